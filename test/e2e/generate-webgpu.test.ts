// `reno generate --preset tiny --user examples/history.json --backend webgpu` end to end with every reward, the
// personal one included: the same losses as on wasm at every step (the fused WebGPU programs, the UNet's constant
// conditioning and asynchronous read-backs throughout: WebGPU in Node has no synchronous read).
// Skipped when no WebGPU adapter is available (CI installs Mesa 25 lavapipe).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { REWARDS } from '../../rewards/index.js';
import { personalReward } from '../../rewards/personal.js';
import { generateCommand } from '../../src/commands/generate.js';
import { setupWebgpu } from '../../src/webgpu.js';
import { ROOT, tmpDir } from '../helpers.js';

const probe = await setupWebgpu({ allowSoftware: true }).catch((e: Error) => ({ ok: false, why: e.message }));
const skip = probe.ok ? false : `no WebGPU adapter: ${probe.why}`;

if (!REWARDS.some((r) => r.name === 'personal')) REWARDS.push(personalReward); // as in personal-generate.test.ts

const HISTORY = path.join(ROOT, 'examples', 'history.json');
const ALL = { weights: { personal: 1, imagereward: 1, aesthetic: 1, pickscore: 0.05, clip: 1 } };

test('generate with every reward on webgpu gives the losses it gives on wasm', { skip, timeout: 600_000 }, async () => {
  const out = tmpDir('reno-generate-webgpu');
  const totals: Record<string, number[][]> = {};
  for (const backend of ['wasm', 'webgpu']) {
    const r = await generateCommand({ prompt: 'a lighthouse at dusk', preset: 'tiny', user: HISTORY, steps: 3, seed: 5, out, backend, quiet: true, overrides: ALL });
    const lines = fs.readFileSync(path.join(r.dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 3);
    assert.ok(Object.keys(lines[0].rewards).includes('personal'), `rewards: ${Object.keys(lines[0].rewards)}`);
    totals[backend] = lines.map((m) => [m.total, ...Object.keys(m.rewards).sort().map((k) => m.rewards[k])]);
  }
  for (let i = 0; i < 3; i++) {
    totals.webgpu[i].forEach((v, j) => {
      const ref = totals.wasm[i][j];
      assert.ok(Math.abs(v - ref) <= 1e-3 * Math.max(1, Math.abs(ref)), `step ${i + 1}, value ${j}: webgpu ${v}, wasm ${ref}`);
    });
  }
});
