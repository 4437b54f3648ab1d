// The openclip_hpsv2 and aesthetic_laion parity cases against the upstream fixtures on every test backend (HPSv2's
// model from both the torch zip and the safetensors copy), and the same cases through the runner on a second fixture
// root with other sizes (test/parity/hpsv2-aesthetic-second-layout.ts: references by reno on cpu, runner on wasm).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { useBackend } from '../../src/runtime/backend.js';
import { aestheticLaionCase } from '../../src/parity/cases/aesthetic-laion.js';
import { openclipHpsv2Case } from '../../src/parity/cases/openclip-hpsv2.js';
import { runParity } from '../../src/parity/runner.js';
import { readNpy, writeNpy } from '../../src/weights/npy.js';
import { PARITY, testBackends, tmpDir } from '../helpers.js';
import { buildHpsv2AestheticSecondLayout } from './hpsv2-aesthetic-second-layout.js';

const cases = [openclipHpsv2Case, aestheticLaionCase];
const only = ['openclip_hpsv2', 'aesthetic_laion'];
const TENSORS = [
  'visual_ln_post',
  'text_ln_final',
  'image_features_raw',
  'text_features_raw',
  'image_features',
  'text_features',
  'logit_scale_exp',
  'logits_per_image',
  'hps_logits',
  'grad_image_of_hps_pair_sum',
];

for (const be of testBackends()) {
  test(`openclip_hpsv2 (from .pt and .safetensors) and aesthetic_laion fixtures pass on ${be}`, async () => {
    await useBackend(be, { quiet: true });
    const lines: string[] = [];
    const r = await runParity(PARITY, { backend: be, cases, only, write: (l) => lines.push(l) });
    assert.equal(r.errors.length, 0, lines.join('\n'));
    assert.equal(r.failed.length, 0, lines.join('\n'));
    const names = r.checks.map((c) => c.name);
    for (const g of ['pt', 'safetensors'])
      for (const t of TENSORS) assert.ok(names.includes(`openclip_hpsv2/${g}/${t}`), `missing openclip_hpsv2/${g}/${t}`);
    assert.ok(names.includes('aesthetic_laion/score') && names.includes('aesthetic_laion/grad_embeddings'));
    assert.equal(r.checks.length, 2 * TENSORS.length + 2, lines.join('\n'));
    for (const c of r.checks) assert.ok(c.relErr <= (c.kind === 'gradient' ? 1e-3 : 1e-4), `${c.name}: ${c.relErr}`);
    assert.ok(!lines.some((l) => l.includes('not disposed')), lines.join('\n'));
  });
}

test('openclip_hpsv2 and aesthetic_laion read every size from the fixture: a second layout passes, corrupted references fail', async () => {
  const root = tmpDir('reno-hps-layout');
  await buildHpsv2AestheticSecondLayout(root);
  const other = testBackends().find((b) => b !== 'cpu') ?? 'cpu';
  await useBackend(other, { quiet: true });
  const lines: string[] = [];
  const ok = await runParity(root, { backend: other, cases, write: (l) => lines.push(l) });
  assert.equal(ok.errors.length + ok.failed.length, 0, lines.join('\n'));
  assert.equal(ok.checks.length, 2 * TENSORS.length + 2, lines.join('\n'));
  assert.ok(!lines.some((l) => l.includes('not disposed')), lines.join('\n'));
  for (const [f, name] of [
    ['openclip_hpsv2/io/grad_image_of_hps_pair_sum.npy', 'openclip_hpsv2/pt/grad_image_of_hps_pair_sum'],
    ['openclip_hpsv2/io/text_ln_final.npy', 'openclip_hpsv2/safetensors/text_ln_final'],
    ['aesthetic_laion/io/score.npy', 'aesthetic_laion/score'],
  ]) {
    const file = path.join(root, f);
    const ref = readNpy(file);
    const data = Float32Array.from(ref.data);
    data[1] += 0.05 * Math.max(...data.map(Math.abs));
    writeNpy(file, ref.shape, data);
    const bad = await runParity(root, { backend: other, cases, write: () => {} });
    assert.ok(
      bad.failed.some((c) => c.name === name),
      `corrupting ${f} did not fail ${name}`,
    );
    writeNpy(file, ref.shape, ref.data);
  }
  fs.rmSync(root, { recursive: true, force: true });
});
