// The Idefics3 (SmolVLM) backbone against the upstream fixture (transformers 5.17) on every test backend, and the
// same case on a second fixture root with other sizes (references by reno on cpu, runner on another backend).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { useBackend } from '../../src/runtime/backend.js';
import { idefics3Case } from '../../src/parity/cases/idefics3.js';
import { runParity } from '../../src/parity/runner.js';
import { readNpy, writeNpy } from '../../src/weights/npy.js';
import { PARITY, testBackends, tmpDir } from '../helpers.js';
import { buildIdefics3SecondLayout } from './idefics3-second-layout.js';

const NAMES = [
  'idefics3/vision_last_hidden_state',
  'idefics3/image_hidden_states',
  'idefics3/inputs_embeds',
  'idefics3/logits (attention_mask 1)',
  'idefics3/last_logits',
  'idefics3/score',
  'idefics3/grad_pixel_values',
  'idefics3/grad_inputs_embeds',
];

for (const be of testBackends()) {
  test(`idefics3 upstream fixture passes on ${be}`, async () => {
    await useBackend(be, { quiet: true });
    const lines: string[] = [];
    const r = await runParity(PARITY, { backend: be, cases: [idefics3Case], only: ['idefics3'], write: (l) => lines.push(l) });
    assert.equal(r.errors.length, 0, lines.join('\n'));
    assert.equal(r.failed.length, 0, lines.join('\n'));
    const names = r.checks.map((c) => c.name);
    for (const n of NAMES) assert.ok(names.includes(n), `missing check ${n}\n${lines.join('\n')}`);
    assert.ok(
      names.some((n) => n.startsWith('idefics3/score (cache of')),
      'missing the KV-cache score check',
    );
    assert.ok(!lines.some((l) => l.includes('not disposed')), lines.join('\n'));
  });
}

test('idefics3 second layout (other sizes, tied lm_head, 4.x config, batch 2 with padding) passes; a corrupted reference fails', async () => {
  const root = tmpDir('reno-idefics3');
  await buildIdefics3SecondLayout(root);
  const other = testBackends().find((b) => b !== 'cpu') ?? 'cpu';
  await useBackend(other, { quiet: true });
  const lines: string[] = [];
  const ok = await runParity(root, { backend: other, cases: [idefics3Case], write: (l) => lines.push(l) });
  assert.equal(ok.errors.length, 0, lines.join('\n'));
  assert.equal(ok.failed.length, 0, lines.join('\n'));
  assert.equal(ok.checks.length, NAMES.length + 1, lines.join('\n'));
  const f = path.join(root, 'idefics3', 'io', 'grad_pixel_values.npy');
  const ref = readNpy(f);
  const data = Float32Array.from(ref.data);
  const big = data.reduce((a, x, i) => (Math.abs(x) > Math.abs(data[a]) ? i : a), 0);
  data[big] *= 1.01;
  writeNpy(f, ref.shape, data);
  const bad = await runParity(root, { backend: other, cases: [idefics3Case], write: () => {} });
  assert.ok(bad.failed.some((c) => c.name === 'idefics3/grad_pixel_values'));
  fs.rmSync(root, { recursive: true, force: true });
});
