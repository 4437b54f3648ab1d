// ReNO step benchmark: the real loop (src/optimize/loop.ts runReno: generate -> weighted reward losses -> backward to
// z -> gradient-norm clip -> Nesterov SGD step) with the paper's reward weights and settings (configs/default.yaml),
// seconds and peak tensor memory per backend; then every part alone (text encoder once; UNet, VAE decoder and each
// reward, forward and forward + input gradient), one model resident at a time, so that the figures exist where the
// whole step does not fit (the full models on wasm: 4 GB wasm32 heap). Tiny preset or full architecture (random
// weights). Needs no sharp: nothing from src/image or src/run is imported.
//   npx tsx bench/reno-step.ts [--arch tiny|full] [--px 256|512] [--steps N] [--backends cpu,wasm,webgpu]
//       [--parts step,te,unet,vae,rewards] [--rewards imagereward,aesthetic,pickscore,clip] [--checkpoint on,off]
//       [--reps N] [--warmup 1] [--isolate | --no-isolate]
// --steps N: N iterations that each update z; the loop runs N + 1 evaluations (its last one takes no step).
// --isolate (the default for full sizes on wasm): each model's parts run in a child process of their own.
import * as tf from '../src/runtime/tf.js';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { oneStep } from '../generators/sd-turbo/scheduler.js';
import { schedulerConfig } from '../src/models/sd-turbo/config.js';
import { RewardInput } from '../rewards/input.js';
import type { Reward } from '../rewards/types.js';
import { useBackend } from '../src/runtime/backend.js';
import { checkpointing, setCheckpointing } from '../src/nn/recompute.js';
import { halfWeightsOn, hostWeightsOn } from '../src/nn/module.js';
import { disposeResult, runReno, type ActiveReward } from '../src/optimize/loop.js';
import { seededNoise } from '../src/optimize/noise.js';
import { ClipTokenizer } from '../src/tokenizers/clip-bpe.js';
import {
  BENCH_PROMPT,
  buildGenerator,
  buildReward,
  buildTextEncoder,
  buildUnet,
  buildVae,
  fullGeneratorBytes,
  fullRewardBytes,
  paperDefaults,
  SD_TURBO_SCHEDULER,
  tinyContext,
  vaeScale,
  type Arch,
  type RewardName,
} from './full-models.js';
import { backendAlive, backendNote, errorText, measureAsync, wasmHeapMB, withPeak, type Measured } from './measure.js';
import { backends, flag, has, machine, row } from './util.js';

/** The wasm32 heap limit of tfjs-backend-wasm. */
export const WASM_HEAP_BYTES = 4 * 2 ** 30;
const GB = 2 ** 30;

export interface WholeStep {
  steps: number;
  checkpoint: boolean;
  /** the text encoder's one forward pass for the prompt (Generator.prepare) */
  prepareSeconds: number;
  /** wall time of the loop: steps + 1 evaluations, steps updates */
  totalSeconds: number;
  /** median of the iterations that update z (generate, rewards, backward, clip, Nesterov step) */
  iterationSeconds: number;
  /** the loop's last evaluation (forward only) */
  finalSeconds: number;
  /** highest sum of distinct tensor buffers during the timed run (weights included) */
  peakMB: number;
  /** WebGPU: the most bytes of GPU buffers held at once during the timed run, tfjs' pool included (else null) */
  deviceMB: number | null;
  rssMB: number;
  heapMB: number | null;
  /** reward losses of the first iteration, as the loop recorded them */
  losses: Record<string, number>;
}

/** The default reward set: those with a weight in configs/default.yaml (the paper's: imagereward 1, aesthetic 1,
 * pickscore 0.05, clip 1). */
export function paperRewards(): RewardName[] {
  return Object.keys(paperDefaults().weights) as RewardName[];
}

/** One ReNO run of `steps` updating iterations through runReno, after `warmup` runs of one iteration. */
export async function benchWholeStep(o: {
  arch: Arch;
  px: number;
  steps: number;
  rewards: RewardName[];
  checkpoint: boolean;
  warmup: number;
}): Promise<WholeStep> {
  const d = paperDefaults();
  const was = checkpointing();
  setCheckpointing(o.checkpoint);
  const gen = buildGenerator(o.arch);
  const built: Reward[] = [];
  const active: ActiveReward[] = [];
  let cond: ReturnType<typeof gen.prepare> | null = null;
  let z0: tf.Tensor4D | null = null;
  try {
    for (const n of o.rewards) {
      const r = await buildReward(n, o.arch, { prompt: BENCH_PROMPT });
      built.push(r);
      active.push({ name: n, weight: d.weights[n] ?? 1, prepared: r.prepare(BENCH_PROMPT), reward: r });
    }
    let t0 = performance.now();
    cond = gen.prepare(BENCH_PROMPT);
    await cond.tensors[0].data();
    const prepareSeconds = (performance.now() - t0) / 1000;
    // as src/run/session.ts does: the text encoders wait in host memory while the loop runs
    await gen.parkPromptModels();
    for (const r of built) await r.parkPromptModels?.();
    z0 = seededNoise(gen.latentShape({ width: o.px, height: o.px }), 0);
    const settings = {
      optimize: true,
      optimizer: 'sgd' as const,
      lr: d.lr,
      momentum: d.momentum,
      nesterov: d.nesterov,
      gradClip: d.gradClip,
      regWeight: d.regWeight,
    };
    for (let i = 0; i < o.warmup; i++) disposeResult(await runReno(gen, cond, z0, active, { ...settings, steps: 2 }));
    t0 = performance.now();
    const { value: res, peakBytes, deviceBytes } = await withPeak(() => runReno(gen, cond!, z0!, active, { ...settings, steps: o.steps + 1 }));
    const totalSeconds = (performance.now() - t0) / 1000;
    disposeResult(res);
    if (res.stopped) throw new Error(res.stopped.message);
    const iters = res.records
      .slice(0, o.steps)
      .map((r) => r.seconds)
      .sort((a, b) => a - b);
    return {
      steps: o.steps,
      checkpoint: o.checkpoint,
      prepareSeconds,
      totalSeconds,
      iterationSeconds: iters[Math.floor(iters.length / 2)],
      finalSeconds: res.records[o.steps].seconds,
      peakMB: peakBytes / 2 ** 20,
      deviceMB: deviceBytes === null ? null : deviceBytes / 2 ** 20,
      rssMB: process.memoryUsage().rss / 2 ** 20,
      heapMB: wasmHeapMB(),
      losses: res.records[0].rewards,
    };
  } finally {
    z0?.dispose();
    cond?.dispose();
    for (const a of active) a.prepared.dispose();
    for (const r of built) r.dispose();
    gen.dispose();
    setCheckpointing(was);
  }
}

export interface PartRow {
  part: string;
  pass: string;
  checkpoint: string;
  m: Measured | null;
  error?: string;
}

/**
 * Every part alone, one model resident at a time: the text encoder (once per prompt), the UNet and the VAE decoder
 * (forward; forward + gradient to the input under each checkpointing mode) and each reward (loss; loss + gradient
 * to the image). `emit` gets each row as soon as it is measured.
 */
export async function benchParts(
  o: { arch: Arch; px: number; parts: string[]; rewards: RewardName[]; checkpoints: boolean[]; reps: number; warmup: number },
  emit: (r: PartRow) => void,
): Promise<PartRow[]> {
  const rows: PartRow[] = [];
  const was = checkpointing();
  const run = async (part: string, pass: string, ck: string, fn: () => tf.Tensor): Promise<void> => {
    const r: PartRow = { part, pass, checkpoint: ck, m: null };
    if (!(await backendAlive())) r.error = 'the backend aborted earlier (out of memory?)';
    else
      try {
        r.m = await measureAsync(fn, o.reps, o.warmup);
      } catch (e) {
        r.error = errorText(e);
      }
    rows.push(r);
    emit(r);
  };
  const grads = async (part: string, f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor) => {
    for (const c of o.checkpoints) {
      setCheckpointing(c);
      await run(part, 'forward + input grad', c ? 'on' : 'off', () => tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(f(v)))(x)));
    }
    setCheckpointing(was);
  };
  const guard = async (part: string, body: () => Promise<void>) => {
    const before = rows.length;
    try {
      await body();
    } catch (e) {
      // freeing the model of a wasm module that aborted fails too: its rows already say why
      if (rows.length > before && !(await backendAlive())) return;
      const r: PartRow = { part, pass: rows.length > before ? 'cleanup' : 'build', checkpoint: '', m: null, error: errorText(e) };
      rows.push(r);
      emit(r);
    }
  };
  const step = oneStep(schedulerConfig(SD_TURBO_SCHEDULER, 'SD-Turbo scheduler'));
  const te = o.parts.includes('te') || o.parts.includes('unet') ? buildTextEncoder(o.arch) : null;
  const tokenizer = ClipTokenizer.fromFolder(path.join(tinyContext().locate('sd-turbo'), 'tokenizer'));
  let ctx: tf.Tensor | null = null;
  if (te) {
    const t = tokenizer.tokenize([BENCH_PROMPT], { pad: 'bang', clean: 'hf', length: te.config.maxPositions });
    const ids = tf.tensor2d(t.ids, t.shape, 'int32');
    const encode = () =>
      tf.tidy(() => {
        const out = te.forward(ids);
        out.pooled.dispose();
        return out.lastHiddenState;
      });
    if (o.parts.includes('te')) await run('text encoder (once per prompt)', 'forward', '', encode);
    ctx = encode();
    ids.dispose();
    te.dispose();
  }
  if (o.parts.includes('unet') && ctx) {
    await guard('unet', async () => {
      const unet = buildUnet(o.arch);
      const lat = o.px / vaeScale(o.arch);
      // the UNet's input as the pipeline scales it: z * init_noise_sigma * scale_model_input
      const x = tf.tidy(() =>
        tf.mul(tf.randomNormal([1, lat, lat, unet.config.inChannels], 0, 1, 'float32', 5), step.initNoiseSigma * step.inputScale),
      ) as tf.Tensor4D;
      // as the loop calls it (SdTurboPipeline.trace): the timestep and the prompt's context are constants
      const f = (v: tf.Tensor) => unet.forward(v as tf.Tensor4D, [step.timestep], ctx!, { constantConditioning: true });
      await run('unet', 'forward', '', () => tf.tidy(() => f(x)));
      await grads('unet', f, x);
      x.dispose();
      unet.dispose();
    });
  }
  ctx?.dispose();
  if (o.parts.includes('vae')) {
    await guard('vae decoder', async () => {
      const vae = buildVae(o.arch);
      const lat = o.px / vaeScale(o.arch);
      const z = tf.randomNormal([1, lat, lat, vae.config.latentChannels], 0, 1, 'float32', 6) as tf.Tensor4D;
      const f = (v: tf.Tensor) => vae.decode(v as tf.Tensor4D);
      await run('vae decoder', 'forward', '', () => tf.tidy(() => f(z)));
      await grads('vae decoder', f, z);
      z.dispose();
      vae.dispose();
    });
  }
  if (o.parts.includes('rewards')) {
    const image = tf.randomUniform([1, o.px, o.px, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    for (const n of o.rewards) {
      await guard(n, async () => {
        const reward = await buildReward(n, o.arch, { prompt: BENCH_PROMPT });
        const prepared = reward.prepare(BENCH_PROMPT);
        await run(n, 'forward (loss)', 'n/a', () => tf.tidy(() => prepared.loss(new RewardInput(image))));
        await run(n, 'forward + image grad', 'n/a', () =>
          tf.tidy(() => tf.grad((x: tf.Tensor) => prepared.loss(new RewardInput(x as tf.Tensor4D)))(image)),
        );
        prepared.dispose();
        reward.dispose();
      });
    }
    image.dispose();
  }
  return rows;
}

/** The sum of the parts' forward + gradient times: an estimate of one updating iteration (checkpointing on). */
export function iterationEstimate(rows: PartRow[], rewards: RewardName[]): number | null {
  const grad = (part: string) => rows.find((r) => r.part === part && r.pass.startsWith('forward +') && r.checkpoint !== 'off')?.m?.seconds;
  const parts = ['unet', 'vae decoder', ...rewards].map(grad);
  return parts.every((s) => s !== undefined) ? (parts as number[]).reduce((a, b) => a + b, 0) : null;
}

const mb = (v: number | null | undefined) => (v === null || v === undefined ? '' : v.toFixed(0));

/** The parts as separate units, each runnable in its own process (--isolate). */
function units(parts: string[], rewards: RewardName[]): { parts: string[]; rewards: RewardName[]; label: string }[] {
  const out: { parts: string[]; rewards: RewardName[]; label: string }[] = [];
  for (const p of ['te', 'unet', 'vae']) if (parts.includes(p)) out.push({ parts: [p], rewards: [], label: p });
  if (parts.includes('rewards')) for (const r of rewards) out.push({ parts: ['rewards'], rewards: [r], label: r });
  return out;
}

/** Run one unit in a child process (a wasm module that runs out of memory aborts for good); its rows come back as
 * JSON lines on stdout. */
function runChild(unit: { parts: string[]; rewards: RewardName[]; label: string }, b: string, args: Record<string, string>): PartRow[] {
  const argv = [
    ...process.execArgv,
    process.argv[1],
    '--child',
    '--backends',
    b,
    '--parts',
    unit.parts.join(','),
    '--rewards',
    unit.rewards.join(',') || 'none',
  ];
  for (const [k, v] of Object.entries(args)) argv.push(`--${k}`, v);
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 2 ** 20 });
  const rows: PartRow[] = [];
  for (const line of (r.stdout ?? '').split('\n')) if (line.startsWith(CHILD_ROW)) rows.push(JSON.parse(line.slice(CHILD_ROW.length)) as PartRow);
  if (r.status !== 0) {
    const why =
      (r.stderr ?? '')
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('Warning'))
        .slice(-1)[0] ?? `exit ${r.status ?? r.signal}`;
    rows.push({
      part: unit.label,
      pass: 'process',
      checkpoint: '',
      m: null,
      error: `the process ended (${r.status ?? r.signal}): ${errorText(why, 80)}`,
    });
  }
  return rows;
}

const CHILD_ROW = '@@part ';

async function main(): Promise<void> {
  const arch = flag('arch', 'tiny') as Arch;
  if (arch !== 'tiny' && arch !== 'full') throw new Error(`--arch must be tiny or full, found "${arch}"`);
  const full = arch === 'full';
  const px = Number(flag('px', full ? '512' : '64'));
  const steps = Number(flag('steps', '1'));
  const parts = flag('parts', 'step,te,unet,vae,rewards').split(',');
  const rewardFlag = flag('rewards', paperRewards().join(','));
  const rewards = (rewardFlag === 'none' ? [] : rewardFlag.split(',')) as RewardName[];
  const checkpoints = flag('checkpoint', 'on,off')
    .split(',')
    .map((s) => s === 'on');
  const reps = Number(flag('reps', full ? '1' : '3'));
  const warmup = Number(flag('warmup', '1'));
  const list = await backends(flag('backends', full ? 'wasm' : 'cpu,wasm'));
  if (has('child')) {
    // one unit of an --isolate run: rows as JSON lines, nothing else on stdout
    await useBackend(list[0], { quiet: true });
    await benchParts({ arch, px, parts, rewards, checkpoints, reps, warmup }, (r) => console.log(CHILD_ROW + JSON.stringify(r)));
    return;
  }
  const weights = paperDefaults().weights;
  console.log(
    `# ReNO step benchmark, ${arch} architecture${full ? ' (random weights)' : ' (tiny preset)'}, ${px} px, ${steps} updating iteration(s), ${new Date().toISOString().slice(0, 10)}`,
  );
  console.log(`# ${machine()}`);
  console.log(
    `# rewards (weight): ${rewards.map((r) => `${r} ${weights[r] ?? 1}`).join(', ')}; checkpointing modes: ${checkpoints.map((c) => (c ? 'on' : 'off')).join(', ')}; fused WebGPU programs ${process.env.RENO_WEBGPU_FUSED === 'off' ? 'off' : 'on'} (RENO_WEBGPU_FUSED); conv program ${process.env.RENO_WEBGPU_CONV || 'tfjs'} (RENO_WEBGPU_CONV), matMul program ${process.env.RENO_WEBGPU_MATMUL || 'tfjs'} (RENO_WEBGPU_MATMUL), Winograd ${process.env.RENO_WEBGPU_WINOGRAD || '4'} (RENO_WEBGPU_WINOGRAD), attention ${process.env.RENO_WEBGPU_ATTENTION || 'flash'} (RENO_WEBGPU_ATTENTION); weights ${process.env.RENO_WEIGHT_DTYPE || 'fp32'} (RENO_WEIGHT_DTYPE), conv / Linear weights in host memory: ${process.env.RENO_HOST_WEIGHTS || 'auto (wasm)'} (RENO_HOST_WEIGHTS)`,
  );
  console.log(
    "# peak buffers MB: distinct tensor buffers alive at once, weights included; device MB (WebGPU): GPU buffers held at once, the pool of released buffers included (RENO_WEBGPU_POOL_MB); wasm heap MB: the heap's high-water mark",
  );
  for (const b of list) {
    await useBackend(b, { quiet: true });
    console.log(`\n# backend ${await backendNote()}`);
    if (parts.includes('step')) {
      console.log(
        `\n## ${b}: whole ReNO iteration (runReno; ${steps + 1} evaluations, ${steps} updates; ${warmup} warm-up run(s) of one iteration)\n`,
      );
      // the weights the loop keeps on the device (the text encoders are parked in host memory)
      const dtype = halfWeightsOn() ? 'fp16' : 'fp32';
      const gen = fullGeneratorBytes(dtype).loop;
      // with host weights (RENO_HOST_WEIGHTS, on by default on wasm) conv and Linear weights are not in the heap
      const need = full && !hostWeightsOn() ? gen + rewards.reduce((a, n) => a + fullRewardBytes(n, dtype).loop, 0) : 0;
      if (b === 'wasm' && need > WASM_HEAP_BYTES) {
        console.log(
          `Whole step skipped on wasm: the generator and rewards hold ${(need / GB).toFixed(2)} GiB of ${dtype} weights ` +
            `(generator ${(gen / GB).toFixed(2)} GiB; rewards ${rewards.map((n) => `${n} ${(fullRewardBytes(n, dtype).loop / GB).toFixed(2)}`).join(', ')} GiB), ` +
            `more than the ${WASM_HEAP_BYTES / GB} GiB wasm32 heap. See the per-part figures (one model resident at a time).`,
        );
      } else {
        console.log(
          row([
            'backend',
            'checkpointing',
            'text encoder once s',
            `total s (${steps} it.)`,
            's / iteration',
            'final evaluation s',
            'peak buffers MB',
            'device MB',
            'wasm heap MB',
            'RSS MB',
            'first losses',
          ]),
        );
        console.log(row(['---', '---', '---', '---', '---', '---', '---', '---', '---', '---', '---']));
        for (const c of checkpoints) {
          try {
            const w = await benchWholeStep({ arch, px, steps, rewards, checkpoint: c, warmup });
            const losses = Object.entries(w.losses)
              .map(([k, v]) => `${k} ${v.toFixed(3)}`)
              .join(', ');
            console.log(
              row([
                b,
                c ? 'on' : 'off',
                w.prepareSeconds,
                w.totalSeconds,
                w.iterationSeconds,
                w.finalSeconds,
                mb(w.peakMB),
                mb(w.deviceMB),
                mb(w.heapMB),
                mb(w.rssMB),
                losses,
              ]),
            );
          } catch (e) {
            console.log(row([b, c ? 'on' : 'off', `failed: ${errorText(e)}`, '', '', '', '', '', mb(wasmHeapMB()), '', '']));
            if (!(await backendAlive())) break;
          }
        }
      }
    }
    const partList = parts.filter((p) => p !== 'step');
    if (!partList.length) continue;
    const isolate = has('isolate') || (full && b === 'wasm' && !has('no-isolate'));
    console.log(
      `\n## ${b}: each part alone (median of ${reps} after ${warmup} warm-up; backward = forward + grad - forward${isolate ? '; each model in its own process' : ''})\n`,
    );
    console.log(row(['backend', 'part', 'pass', 'checkpointing', 'seconds', 'backward s', 'peak buffers MB', 'device MB', 'wasm heap MB', 'RSS MB']));
    console.log(row(['---', '---', '---', '---', '---', '---', '---', '---', '---', '---']));
    const fwd = new Map<string, number>();
    const print = (r: PartRow) => {
      if (!r.m) return console.log(row([b, r.part, r.pass, r.checkpoint, `failed: ${r.error}`, '', '', '', '', '']));
      if (!r.pass.includes('grad')) fwd.set(r.part, r.m.seconds);
      const f = fwd.get(r.part);
      const bwd = r.pass.includes('grad') && f !== undefined ? (r.m.seconds - f).toFixed(3) : '';
      console.log(row([b, r.part, r.pass, r.checkpoint, r.m.seconds, bwd, mb(r.m.peakMB), mb(r.m.deviceMB), mb(r.m.heapMB), mb(r.m.rssMB)]));
    };
    let rows: PartRow[] = [];
    if (isolate) {
      const args = { arch, px: String(px), checkpoint: flag('checkpoint', 'on,off'), reps: String(reps), warmup: String(warmup) };
      for (const u of units(partList, rewards))
        for (const r of runChild(u, b, args)) {
          rows.push(r);
          print(r);
        }
    } else rows = await benchParts({ arch, px, parts: partList, rewards, checkpoints, reps, warmup }, print);
    const est = iterationEstimate(rows, rewards);
    if (est !== null)
      console.log(
        `\n${b}: sum of the parts' forward + gradient times (checkpointing on) = ${est.toFixed(3)} s, an estimate of one updating iteration`,
      );
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await main();
