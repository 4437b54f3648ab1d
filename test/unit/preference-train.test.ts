// Training the preference model on the tiny backbone: a short run on a synthetic taste world gets held-out pairs
// clearly above chance (the untrained model does not), an interrupted run resumed from its checkpoint ends exactly
// where an uninterrupted one does, the ablation flags (ViPer*: no prompt, no aux loss, no prototypes), and the
// command's refusals.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadPreferenceModel } from '../../src/preference/checkpoint.js';
import { readPreferenceDataset } from '../../src/preference/data.js';
import { splitAccuracy } from '../../src/preference/eval.js';
import { PreferenceModel } from '../../src/preference/model.js';
import { writeTasteWorld } from '../../src/preference/synth.js';
import { preferenceTrain } from '../../src/commands/preference.js';
import { UsageError } from '../../src/errors.js';
import { ROOT, backend, tmpDir } from '../helpers.js';

const BACKBONE = path.join(ROOT, 'presets', 'tiny', 'HuggingFaceTB', 'SmolVLM-256M-Instruct');
const metrics = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

test('learning: a short run on a taste world ranks held-out pairs clearly above chance; the untrained model does not', async (t) => {
  await backend('wasm');
  const root = tmpDir('reno-pref-learn');
  const data = path.join(root, 'world');
  // everyone likes light backgrounds and large shapes (plus group and individual variation)
  await writeTasteWorld({ out: data, users: 40, pairsPerUser: 24, seed: 5, globalTaste: [0, 2, 0, 1], groupStd: 0.5, individualStd: 0.3 });
  const out = path.join(root, 'ckpt');
  const r = await preferenceTrain({
    data,
    out,
    backbone: BACKBONE,
    preset: 'tiny',
    nRef: 1,
    minRef: 1,
    noPrompt: true,
    trainVision: false,
    steps: 50,
    protoSteps: 0,
    batch: 16,
    lr: 3e-3,
    evalPairs: 0,
    seed: 0,
    backend: 'wasm',
    quiet: true,
    log: () => {},
  });
  assert.deepEqual(r.state, { stage: 1, step: 50 });
  const ds = readPreferenceDataset(data);
  const trained = loadPreferenceModel(out, { backboneDir: BACKBONE });
  const untrained = PreferenceModel.create(BACKBONE, trained.config, { seed: 0 });
  const THRESHOLD = 0.62;
  try {
    const a = await splitAccuracy(trained, ds, 'test', { maxPairs: 240 });
    const b = await splitAccuracy(untrained, ds, 'test', { maxPairs: 240 });
    t.diagnostic(`held-out pairwise accuracy: trained ${a.accuracy.toFixed(4)}, untrained ${b.accuracy.toFixed(4)} (${a.n} pairs)`);
    assert.equal(a.n, 240);
    assert.ok(a.accuracy >= THRESHOLD, `trained: ${a.accuracy} on ${a.n} held-out pairs`);
    assert.ok(b.accuracy < THRESHOLD, `untrained: ${b.accuracy}`);
    assert.ok(a.accuracy - b.accuracy >= 0.1, `trained ${a.accuracy} vs untrained ${b.accuracy}`);
  } finally {
    trained.dispose();
    untrained.dispose();
  }
  const m = metrics(out);
  assert.equal(m.length, 50);
  for (const k of ['loss', 'base', 'plus', 'minus', 'acc', 'grad_norm', 'lr', 'seconds']) assert.equal(typeof m[0][k], 'number', k);
});

test('resume: stopped after step 1, resumed with --resume, the run ends exactly as an uninterrupted one (stage 1 and 2)', async () => {
  await backend('wasm');
  const root = tmpDir('reno-pref-resume');
  const data = path.join(root, 'world');
  await writeTasteWorld({ out: data, users: 3, pairsPerUser: 8, seed: 2 });
  const base = {
    data,
    backbone: BACKBONE,
    preset: 'tiny',
    nRef: 2,
    steps: 2,
    protoSteps: 2,
    batch: 2,
    saveEvery: 1,
    evalPairs: 0,
    backend: 'wasm',
    quiet: true,
    log: () => {},
  } as const;
  const full = path.join(root, 'full');
  await preferenceTrain({ ...base, out: full });
  const parts = path.join(root, 'parts');
  let calls = 0;
  const stopped = await preferenceTrain({ ...base, out: parts, shouldStop: () => ++calls > 1 });
  assert.equal(stopped.stopped, true);
  assert.deepEqual(stopped.state, { stage: 1, step: 1 });
  await assert.rejects(preferenceTrain({ ...base, out: parts }), (e: Error) => e instanceof UsageError && /--resume/.test(e.message));
  await assert.rejects(
    preferenceTrain({ ...base, out: parts, resume: true, lr: 1 }),
    (e: Error) => e instanceof UsageError && /"lr" cannot change/.test(e.message),
  );
  let calls2 = 0;
  const mid = await preferenceTrain({ data, out: parts, resume: true, backend: 'wasm', quiet: true, log: () => {}, shouldStop: () => ++calls2 > 2 });
  assert.deepEqual(mid.state, { stage: 2, step: 1 }); // stopped inside stage 2
  const done = await preferenceTrain({ data, out: parts, resume: true, backbone: BACKBONE, backend: 'wasm', quiet: true, log: () => {} });
  assert.deepEqual(done.state, { stage: 2, step: 2 });
  for (const f of ['model.safetensors', 'optimizer.safetensors'])
    assert.ok(fs.readFileSync(path.join(full, f)).equals(fs.readFileSync(path.join(parts, f))), `${f} differs`);
  const strip = (ms: Record<string, unknown>[]) => ms.map(({ seconds: _s, ...rest }) => rest);
  assert.deepEqual(strip(metrics(parts)), strip(metrics(full)));
  await assert.rejects(preferenceTrain({ data, out: path.join(root, 'none'), resume: true, backbone: BACKBONE, quiet: true }), /no checkpoint/);
});

test('ablations: --no-prompt --no-aux-loss --prototypes 0 (ViPer*) train and are recorded', async () => {
  await backend('wasm');
  const root = tmpDir('reno-pref-ablate');
  const data = path.join(root, 'world');
  await writeTasteWorld({ out: data, users: 3, pairsPerUser: 8, seed: 3 });
  const out = path.join(root, 'viper');
  const r = await preferenceTrain({
    data,
    out,
    backbone: BACKBONE,
    preset: 'tiny',
    noPrompt: true,
    noAuxLoss: true,
    prototypes: 0,
    nRef: 2,
    steps: 1,
    protoSteps: 5,
    batch: 2,
    evalPairs: 4,
    backend: 'wasm',
    quiet: true,
    log: () => {},
  });
  assert.deepEqual(r.state, { stage: 1, step: 1 }); // no prototypes: no stage 2
  assert.ok(r.eval && r.eval.test.n > 0 && r.eval.test_unseen.n > 0);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.equal(cfg.use_prompt, false);
  assert.equal(cfg.prototypes, 0);
  assert.equal(cfg.training.aux, false);
  const m = metrics(out);
  assert.equal(m[0].loss, m[0].base); // L_all = L_base
  const model = loadPreferenceModel(out, { backboneDir: BACKBONE });
  assert.equal(model.prototypes, null);
  assert.ok(!model.layout.target('a star').ids.includes(model.tokenizer.encode(' star', { addSpecialTokens: false })[0]));
  model.dispose();
  assert.ok(fs.existsSync(path.join(out, 'eval.json')));
  await assert.rejects(preferenceTrain({ data, out: path.join(root, 'bad'), backbone: BACKBONE, batch: 0, quiet: true }), /--batch/);
});

test('training leaves no tensors behind (per-sample loss parts are freed)', async () => {
  await backend('wasm');
  const root = tmpDir('reno-pref-leak');
  const data = path.join(root, 'world');
  await writeTasteWorld({ out: data, users: 3, pairsPerUser: 8, seed: 4 });
  const run = (out: string, steps: number) =>
    preferenceTrain({
      data,
      out: path.join(root, out),
      backbone: BACKBONE,
      preset: 'tiny',
      nRef: 1,
      steps,
      protoSteps: 0,
      batch: 3,
      evalPairs: 0,
      backend: 'wasm',
      quiet: true,
      log: () => {},
    });
  await run('warm', 1); // first use of the backend and kernels
  const before = tf.memory().numTensors;
  await run('counted', 2);
  assert.equal(tf.memory().numTensors, before);
});

test('history loss, several targets and the copy curriculum: recorded, finite, saved in config.json, and they change training', async () => {
  await backend('wasm');
  const root = tmpDir('reno-pref-hist');
  const data = path.join(root, 'world');
  await writeTasteWorld({ out: data, users: 3, pairsPerUser: 8, seed: 6 });
  const base = {
    data,
    backbone: BACKBONE,
    preset: 'tiny',
    nRef: 3,
    minRef: 3,
    steps: 2,
    protoSteps: 0,
    batch: 2,
    seed: 1,
    evalPairs: 0,
    backend: 'wasm',
    quiet: true,
    log: () => {},
  };
  const plain = path.join(root, 'plain');
  await preferenceTrain({ ...base, out: plain, historyLoss: 0, targets: 1, copyShare: 0 });
  const full = path.join(root, 'full');
  await preferenceTrain({ ...base, out: full, historyLoss: 1, targets: 2, copyShare: 1 });
  const [p, f] = [metrics(plain), metrics(full)];
  assert.equal(p[0].history, undefined);
  for (const r of f) assert.ok(Number.isFinite(r.history) && r.history > 0, `history loss ${r.history}`);
  assert.ok(Math.abs(f[0].loss - (f[0].base + f[0].plus + f[0].minus + f[0].history)) < 1e-5, 'L_all + the history loss');
  assert.notEqual(f[0].base, p[0].base, 'other targets (copies, more of them) give another L_base');
  const cfg = JSON.parse(fs.readFileSync(path.join(full, 'config.json'), 'utf8'));
  assert.deepEqual([cfg.training.historyLoss, cfg.training.targets, cfg.training.copyShare], [1, 2, 1]);
  // a resume keeps them; changing one is refused
  await assert.rejects(
    preferenceTrain({ ...base, out: full, resume: true, steps: 3, historyLoss: 0.5 }),
    (e: Error) => e instanceof UsageError && /"historyLoss" cannot change/.test(e.message),
  );
});
