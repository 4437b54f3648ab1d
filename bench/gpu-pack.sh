#!/usr/bin/env bash
# Builds .gpu-pack/ (git-ignored): everything bench/gpu.sh needs on a bare GPU machine with no network, no Node.js
# and no npm packages, within the 64 MiB that travels with the working tree:
#   node.xz                     this machine's Node binary (xz -9e: about 24 MB)
#   *.mjs.xz                    the CLI and the benchmarks bundled by esbuild into single files (sharp left out; the
#                               charts' vega and vega-lite stay in: about 0.24 MB of reno.mjs.xz; 62 MiB travel, 63.7 with
#                               GPU_PACK_ALL=1; over 64, alias vega and vega-lite to a stub as sharp is): the
#                               default stages' (reno-step, gemm, dispatches); GPU_PACK_ALL=1 adds generator, rewards,
#                               profile-kernels and overhead (about 1.8 MB more: the pack is near the 64 MiB limit)
#   tfjs-extras.cjs.xz          tfjs-core's gradients and chained ops (dist/vendor/, built by scripts/build.mjs; src/runtime/tf.ts
#                               loads it from the checkout's dist/vendor/, where bench/gpu.sh puts it)
#   webgpu/                     the "webgpu" package's index.js + dawn.node for linux-x64 only (xz: about 5 MB)
#   debs/*.deb                  the Vulkan loader and glvnd from Debian (the GPU machine has the NVIDIA ICD only)
# The parity fixtures travel as tracked files of the checkout (test/fixtures/parity).
#   bash bench/gpu-pack.sh        then: device run with carry [".gpu-pack"] and command "bash bench/gpu.sh"
set -euo pipefail
cd "$(dirname "$0")/.."
P=.gpu-pack
mkdir -p "$P/webgpu/dist/linux-x64" "$P/debs"
NODE_BIN="$(command -v node)"
# the Node binary is the slow part (about 90 s): reuse it while the version is the same
if [ ! -f "$P/node.xz" ] || [ "$(cat "$P/node.version" 2>/dev/null)" != "$("$NODE_BIN" --version)" ]; then
  xz -9e -T2 -c "$NODE_BIN" > "$P/node.xz.tmp" && mv "$P/node.xz.tmp" "$P/node.xz"
  "$NODE_BIN" --version > "$P/node.version"
fi
if [ ! -f "$P/webgpu/dist/linux-x64/dawn.node.xz" ]; then
  xz -9e -T2 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$P/webgpu/dist/linux-x64/dawn.node.xz"
fi
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$P/webgpu/"
[ -f dist/vendor/tfjs-extras.cjs ] || node scripts/build.mjs
xz -9 -c dist/vendor/tfjs-extras.cjs > "$P/tfjs-extras.cjs.xz"
STUB="$P/sharp-stub.mjs"
echo "export default function sharp() { throw new Error('sharp is not part of the GPU bundle'); }" > "$STUB"
bundle() { # entry output [--minify]
  npx esbuild "$1" --bundle --platform=node --format=esm --target=node20 ${3:-} --log-level=warning \
    --outfile="$P/$2" --alias:sharp="./$STUB" --alias:webgpu="./$P/webgpu/index.js" \
    --external:./$P/webgpu/index.js --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
    --external:@tensorflow/tfjs-backend-wasm \
    --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
  xz -9 -f "$P/$2"
}
bundle src/cli/run.ts reno.mjs --minify
rm -f "$P"/bench-*.mjs.xz
BENCHES="reno-step gemm dispatches"
[ "${GPU_PACK_ALL:-0}" = 1 ] && BENCHES="$BENCHES generator rewards profile-kernels"
for b in $BENCHES; do
  bundle "bench/$b.ts" "bench-$b.mjs" --minify
done
# not minified: its CPU profile names functions as the sources do
[ "${GPU_PACK_ALL:-0}" = 1 ] && bundle bench/overhead.ts bench-overhead.mjs
rm -f "$STUB"
# the Vulkan loader and glvnd: the NVIDIA Vulkan ICD (libGLX_nvidia.so.0) needs libGLdispatch.so.0
if ! ls "$P"/debs/libglvnd0_*.deb >/dev/null 2>&1; then
  (cd "$P/debs" && apt-get download libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 libgles2 2>/dev/null) ||
    echo "warning: could not download the Vulkan loader and glvnd (the GPU machine must have them)"
fi
du -sh "$P"; ls -la "$P" "$P/debs"
tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
pack=$(du -sb "$P" | cut -f1)
echo "travels: tracked $((tracked / 1048576)) MiB + pack $((pack / 1048576)) MiB = $(((tracked + pack) / 1048576)) MiB (limit 64 MiB, plus untracked files)"
