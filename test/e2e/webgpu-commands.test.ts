// Commands end to end on WebGPU against wasm: `reno generate --preset tiny --user examples/history.json` with every
// reward, the personal one included, and `reno preference train` (both stages, checkpoints written): the same
// losses at every step (the fused WebGPU programs, the UNet's constant conditioning, and asynchronous read-backs
// throughout: WebGPU in Node has no synchronous read).
// Skipped when no WebGPU adapter is available (CI installs Mesa 25 lavapipe).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { REWARDS } from '../../rewards/index.js';
import { personalReward } from '../../rewards/personal.js';
import { generateCommand } from '../../src/commands/generate.js';
import { preferenceTrain } from '../../src/commands/preference.js';
import { writeTasteWorld } from '../../src/preference/synth.js';
import { setupWebgpu } from '../../src/runtime/webgpu/setup.js';
import { ROOT, tmpDir } from '../helpers.js';

const probe = await setupWebgpu({ allowSoftware: true }).catch((e: Error) => ({ ok: false, why: e.message }));
const skip = probe.ok ? false : `WebGPU unavailable: ${probe.why}`;

if (!REWARDS.some((r) => r.name === 'personal')) REWARDS.push(personalReward); // as in personal-generate.test.ts

const HISTORY = path.join(ROOT, 'examples', 'history.json');
const ALL = { weights: { personal: 1, imagereward: 1, aesthetic: 1, pickscore: 0.05, clip: 1 } };

test('generate with every reward on webgpu gives the losses it gives on wasm', { skip, timeout: 600_000 }, async () => {
  const out = tmpDir('reno-generate-webgpu');
  const totals: Record<string, number[][]> = {};
  for (const backend of ['wasm', 'webgpu']) {
    const r = await generateCommand({
      prompt: 'a lighthouse at dusk',
      preset: 'tiny',
      user: HISTORY,
      steps: 3,
      seed: 5,
      out,
      backend,
      quiet: true,
      overrides: ALL,
    });
    const lines = fs
      .readFileSync(path.join(r.dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 3);
    assert.ok(Object.keys(lines[0].rewards).includes('personal'), `rewards: ${Object.keys(lines[0].rewards)}`);
    totals[backend] = lines.map((m) => [
      m.total,
      ...Object.keys(m.rewards)
        .sort()
        .map((k) => m.rewards[k]),
    ]);
  }
  for (let i = 0; i < 3; i++) {
    totals.webgpu[i].forEach((v, j) => {
      const ref = totals.wasm[i][j];
      assert.ok(Math.abs(v - ref) <= 1e-3 * Math.max(1, Math.abs(ref)), `step ${i + 1}, value ${j}: webgpu ${v}, wasm ${ref}`);
    });
  }
});

// Stage 1 used to log grad_norm 0 on webgpu (wasm: 14.39) and skip its clip: tfjs-webgpu's AddN over the LoRA
// tensors' squared sums bound more buffers than a program may (src/runtime/webgpu/setup.ts chunkAddN).
test('preference training on webgpu gives the losses it gives on wasm and writes its checkpoints', { skip, timeout: 600_000 }, async () => {
  const root = tmpDir('reno-train-webgpu');
  const data = path.join(root, 'world');
  await writeTasteWorld({ out: data, users: 3, pairsPerUser: 8, seed: 2 });
  const backbone = path.join(ROOT, 'presets', 'tiny', 'HuggingFaceTB', 'SmolVLM-256M-Instruct');
  const losses: Record<string, number[]> = {};
  for (const backend of ['wasm', 'webgpu']) {
    const out = path.join(root, backend);
    const r = await preferenceTrain({
      data,
      out,
      backbone,
      preset: 'tiny',
      nRef: 2,
      steps: 2,
      protoSteps: 2,
      batch: 2,
      saveEvery: 1,
      evalPairs: 0,
      seed: 0,
      backend,
      quiet: true,
      log: () => {},
    });
    assert.deepEqual(r.state, { stage: 2, step: 2 });
    for (const f of ['model.safetensors', 'optimizer.safetensors', 'config.json']) assert.ok(fs.existsSync(path.join(out, f)), `${backend}: ${f}`);
    const lines = fs
      .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    losses[backend] = lines.filter((m) => typeof m.loss === 'number').flatMap((m) => [m.loss, m.grad_norm]);
  }
  assert.equal(losses.webgpu.length, losses.wasm.length);
  assert.ok(losses.wasm.length >= 8, `${losses.wasm.length} values`);
  losses.webgpu.forEach((v, i) =>
    assert.ok(Math.abs(v - losses.wasm[i]) <= 1e-3 * Math.max(1, Math.abs(losses.wasm[i])), `value ${i}: webgpu ${v}, wasm ${losses.wasm[i]}`),
  );
});
