// The BLIP / ImageReward parity cases against the upstream fixtures (imagereward from THUDM's code with weights as
// torch zip and safetensors, transformers' blip_text and blip_text_lm) on every test backend, and the same cases on a
// second fixture root with other sizes (references by reno on cpu, runner on another backend).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { useBackend } from '../../src/runtime/backend.js';
import { BLIP_PARITY_CASES } from '../../src/parity/cases/imagereward.js';
import { runParity } from '../../src/parity/runner.js';
import { readNpy, writeNpy } from '../../src/weights/npy.js';
import { PARITY, testBackends, tmpDir } from '../helpers.js';
import { buildBlipSecondLayout } from './imagereward-layout.js';

const ONLY = ['imagereward', 'blip_text', 'blip_text_lm'];
const OUTPUTS = ['image_embeds', 'text_last_hidden_state', 'text_cls_feature', 'mlp_raw', 'score', 'grad_image'];

for (const be of testBackends()) {
  test(`imagereward, blip_text, blip_text_lm fixtures pass on ${be}`, async () => {
    await useBackend(be, { quiet: true });
    const lines: string[] = [];
    const r = await runParity(PARITY, { backend: be, cases: BLIP_PARITY_CASES, only: ONLY, write: (l) => lines.push(l) });
    const log = lines.join('\n');
    assert.equal(r.errors.length, 0, log);
    assert.equal(r.failed.length, 0, log);
    const names = r.checks.map((c) => c.name);
    for (const tag of ['pt', 'safetensors'])
      for (const o of OUTPUTS) assert.ok(names.includes(`imagereward/${o}/${tag}`), `missing imagereward/${o}/${tag}\n${log}`);
    for (const n of ['blip_text/last_hidden_state', 'blip_text/pooler_output', 'blip_text_lm/logits', 'blip_text_lm/loss'])
      assert.ok(names.includes(n), `missing ${n}`);
    assert.equal(r.checks.length, 16, log);
    assert.ok(!/not disposed/.test(log), log);
  });
}

test('the BLIP cases read every size from the fixture: a second layout passes, a corrupted gradient fails', async () => {
  const root = tmpDir('reno-blip-layout');
  await buildBlipSecondLayout(root);
  const other = testBackends().find((b) => b !== 'cpu') ?? 'cpu';
  await useBackend(other, { quiet: true });
  const lines: string[] = [];
  const ok = await runParity(root, { backend: other, cases: BLIP_PARITY_CASES, write: (l) => lines.push(l) });
  const log = lines.join('\n');
  assert.equal(ok.errors.length, 0, log);
  assert.equal(ok.failed.length, 0, log);
  assert.equal(ok.checks.length, 12 + 2 + 2, log);
  const f = path.join(root, 'imagereward', 'io', 'grad_image.npy');
  const ref = readNpy(f);
  const data = Float32Array.from(ref.data);
  let at = 0;
  for (let i = 1; i < data.length; i++) if (Math.abs(data[i]) > Math.abs(data[at])) at = i;
  data[at] *= 1.01; // 1% of the largest entry: ten times the gradient tolerance
  writeNpy(f, ref.shape, data);
  const bad = await runParity(root, { backend: other, cases: BLIP_PARITY_CASES, only: ['imagereward'], write: () => {} });
  assert.deepEqual(bad.failed.map((c) => c.name).sort(), ['imagereward/grad_image/pt', 'imagereward/grad_image/safetensors']);
  fs.rmSync(root, { recursive: true, force: true });
});
