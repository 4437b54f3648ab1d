#!/usr/bin/env bash
# One run on a bare GPU machine (see bench/gpu-pack.sh): unpack the pack, print the GPU, run the parity suite and the
# benchmarks on WebGPU, copy every log to $OUT. Meant to finish in under 8 minutes; each stage has its own limit.
#   device run: carry [".gpu-pack"], command "bash bench/gpu.sh", timeout_s 600
set -uo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
P="$REPO/.gpu-pack"
W=/tmp/reno-gpu
OUT="${OUT:-/tmp/reno-gpu-out}"
mkdir -p "$W/node_modules/webgpu/dist/linux-x64" "$OUT"
log() { echo "== $(date +%T) $*" | tee -a "$OUT/gpu.log"; }
stage() { # name seconds command...
  local name=$1 secs=$2; shift 2
  local b; for b in "$@"; do case $b in *.mjs) [ -f "$W/$b" ] || { log "$name: $b is not in the pack (GPU_PACK_ALL=1 bash bench/gpu-pack.sh)"; return; } ;; esac; done
  log "$name"
  ( cd "$W" && timeout "$secs" "$@" ) 2>&1 | grep -v '^Warning: max' | tee "$OUT/$name.txt"
  log "$name exit ${PIPESTATUS[0]}"
}
t0=$(date +%s)
xz -dc "$P/node.xz" > "$W/node" && chmod +x "$W/node"
cp "$P/webgpu/index.js" "$P/webgpu/package.json" "$W/node_modules/webgpu/"
xz -dc "$P/webgpu/dist/linux-x64/dawn.node.xz" > "$W/node_modules/webgpu/dist/linux-x64/dawn.node"
# the bundles import the webgpu package by this relative path (see gpu-pack.sh)
mkdir -p "$W/.gpu-pack/webgpu" && cp "$P/webgpu/index.js" "$P/webgpu/package.json" "$W/.gpu-pack/webgpu/" && \
  mkdir -p "$W/.gpu-pack/webgpu/dist/linux-x64" && ln -sf "$W/node_modules/webgpu/dist/linux-x64/dawn.node" "$W/.gpu-pack/webgpu/dist/linux-x64/dawn.node"
for f in "$P"/*.mjs.xz; do xz -dc "$f" > "$W/$(basename "$f" .xz)"; done
# tfjs-core's gradients and chained ops, where src/runtime/tf.ts looks for them (the checkout's dist/vendor/)
mkdir -p "$REPO/dist/vendor" && xz -dc "$P/tfjs-extras.cjs.xz" > "$REPO/dist/vendor/tfjs-extras.cjs"
# the Vulkan loader and glvnd (the NVIDIA ICD, libGLX_nvidia.so.0, needs libGLdispatch) from Debian
if ! ldconfig -p | grep -q libvulkan.so.1 || ! ldconfig -p | grep -q libGLdispatch.so.0; then
  for f in "$P"/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  [ -f "$icd" ] && export VK_DRIVER_FILES="$icd" && break
done
export RENO_ROOT="$REPO" PATH="$W:$PATH"
log "unpacked in $(( $(date +%s) - t0 )) s; VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$OUT/gpu-name.txt"
# GPU_STAGES picks stages (default, most wanted first: parity reno-step fp16 pooloff chunked gemm tiled nockpt parts unfused; also:
# reno-step-b64, dispatches; overhead and profile, whose bundles need GPU_PACK_ALL=1 at packing); GPU_PARTS, GPU_STEPS*,
# GPU_CHECKPOINT (on,off), GPU_OVERHEAD_PARTS and GPU_FLAG_SETS narrow them
STAGES="${GPU_STAGES:-parity reno-step fp16 pooloff chunked gemm tiled nockpt parts unfused}"
# a local dry run on a software adapter: GPU_ARCH=tiny GPU_PX=64 GPU_GEMM_ARGS="--div 16 --reps 1 --min-tiles 1"
ARCH="--arch ${GPU_ARCH:-full} --px ${GPU_PX:-512}"
for s in $STAGES; do
  case $s in
    parity) stage parity 120 node reno.mjs dev parity "$REPO/test/fixtures/parity" --backend webgpu ;;
    # every part of the full 512 px step alone (the per-part table), then the whole 30-step run
    parts) stage parts 170 node bench-reno-step.mjs $ARCH --parts "${GPU_PARTS:-te,unet,vae,rewards}" --backends webgpu --reps 1 --warmup 1 --checkpoint on ;;
    # the whole 30-step run (55 s on an H200 at the last measurement; 250 s cap)
    reno-step) stage reno-step 250 node bench-reno-step.mjs $ARCH --steps "${GPU_STEPS:-30}" --parts step --backends webgpu --checkpoint "${GPU_CHECKPOINT:-on}" ;;
    # tfjs' unbounded buffer pool and submits (RENO_WEBGPU_POOL_MB=off RENO_WEBGPU_PENDING_MB=off) against reno-step's
    # defaults: what evicting and early submits cost in time, what they save in device MB (src/runtime/webgpu/pool.ts)
    pooloff) stage pooloff 120 env RENO_WEBGPU_POOL_MB=off RENO_WEBGPU_PENDING_MB=off node bench-reno-step.mjs $ARCH --steps "${GPU_STEPS_POOLOFF:-8}" --parts step --backends webgpu --checkpoint on ;;
    # the memory goal: float16 weights (half the resident bytes), its peak and what unpacking costs per iteration
    fp16) stage fp16 120 env RENO_WEIGHT_DTYPE=fp16 node bench-reno-step.mjs $ARCH --steps "${GPU_STEPS_FP16:-5}" --parts step --backends webgpu --checkpoint on ;;
    # the attention on the chunked path (src/nn/attention.ts) instead of the flash programs: which to keep as the default
    chunked) stage chunked 120 env RENO_WEBGPU_ATTENTION=chunked node bench-reno-step.mjs $ARCH --steps "${GPU_STEPS_CHUNKED:-8}" --parts step --backends webgpu --checkpoint on ;;
    # the same loop with the fused WebGPU programs off (src/runtime/fused.ts): their gain on this GPU, same machine
    unfused) stage unfused 150 env RENO_WEBGPU_FUSED=off node bench-reno-step.mjs $ARCH --steps "${GPU_STEPS_UNFUSED:-8}" --parts step --backends webgpu --checkpoint on ;;
    # tfjs' conv and matMul programs against reno's tiled ones, each tile, on the VAE's and UNet's shapes (bench/gemm.ts)
    gemm) stage gemm 150 node bench-gemm.mjs ${GPU_GEMM_ARGS:---reps 10} ;;
    # the ReNO loop with the programs that won the gemm stage (skipped where that is the default, Winograd F(4x4) with tfjs'
    # matMul, or gemm did not run); a winning "winogradM+TILE" conv also sets the matMul tile (for its products)
    tiled)
      conv=$(sed -n 's/^best conv: \([0-9a-z+]*\) .*/\1/p' "$OUT/gemm.txt" 2>/dev/null); conv=${conv:-tfjs}
      mm=$(sed -n 's/^best matmul: \([0-9a-z]*\) .*/\1/p' "$OUT/gemm.txt" 2>/dev/null); mm=${mm:-tfjs}
      wino=off
      case $conv in winograd*) wino=${conv:8:1}; case $conv in *+*) mm=${conv#*+} ;; esac; conv=tfjs ;; esac
      if [ -s "$OUT/gemm.txt" ] && [ "$wino$conv$mm" != 4tfjstfjs ]; then # the default (Winograd, tfjs' matMul) ran in reno-step
        stage tiled 150 env RENO_WEBGPU_WINOGRAD=$wino RENO_WEBGPU_CONV="$conv" RENO_WEBGPU_MATMUL="$mm" node bench-reno-step.mjs $ARCH --steps "${GPU_STEPS_TILED:-30}" --parts step --backends webgpu --checkpoint on
      else log "tiled: skipped (the defaults won, or the gemm stage did not run)"; fi ;;
    # the loop without gradient checkpointing (RENO_CHECKPOINT=off): the recompute's cost against its memory
    nockpt) stage nockpt 150 node bench-reno-step.mjs $ARCH --steps "${GPU_STEPS_NOCKPT:-8}" --parts step --backends webgpu --checkpoint off ;;
    # GPU programs per pass, fused on and off (the same counts as on lavapipe: a check that the GPU takes the same paths)
    dispatches) stage dispatches 150 node bench-dispatches.mjs $ARCH --backend webgpu ;;
    # the same with 64 dispatches per submit (tfjs' default 15)
    reno-step-b64) stage reno-step-b64 200 env RENO_WEBGPU_SUBMIT_BATCH=64 node bench-reno-step.mjs $ARCH --steps "${GPU_STEPS:-5}" --parts step --backends webgpu --checkpoint on ;;
    # dispatch overhead, steady-state shader compiles / buffer creation, GPU utilisation and a CPU profile
    overhead) stage overhead 200 node bench-overhead.mjs $ARCH --backend webgpu --prof-dir "$OUT" --parts "${GPU_OVERHEAD_PARTS:-chain,vae,unet}" --flag-sets "${GPU_FLAG_SETS:-default;WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=64}" ;;
    profile) stage profile 200 node bench-profile-kernels.mjs $ARCH --backend webgpu --top 12 ;;
  esac
done
log "total $(( $(date +%s) - t0 )) s"
