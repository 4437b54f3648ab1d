// The "preprocess" and "clip" parity cases against the upstream fixtures on every test backend, and the same
// cases through the runner on a second fixture root with other sizes (test/parity/clip-second-layout.ts).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { clipCase } from '../../src/parity/cases/clip.js';
import { preprocessCase } from '../../src/parity/cases/preprocess.js';
import { runParity } from '../../src/parity/runner.js';
import { useBackend } from '../../src/runtime/backend.js';
import { readNpy, writeNpy } from '../../src/weights/npy.js';
import { PARITY, testBackends, tmpDir } from '../helpers.js';
import { buildClipSecondLayout } from './clip-second-layout.js';

const cases = [preprocessCase, clipCase];

for (const be of testBackends()) {
  test(`preprocess and clip fixtures pass on ${be}`, async () => {
    await useBackend(be, { quiet: true });
    const lines: string[] = [];
    const r = await runParity(PARITY, { backend: be, cases, only: ['preprocess', 'clip'], write: (l) => lines.push(l) });
    assert.equal(r.errors.length, 0, lines.join('\n'));
    assert.equal(r.failed.length, 0, lines.join('\n'));
    assert.equal(r.checks.length, 18 + 7, lines.join('\n'));
    const names = r.checks.map((c) => c.name);
    for (const n of [
      'preprocess/sq512_output',
      'preprocess/sq512_vjp sampled',
      'preprocess/w96h64_vjp',
      'preprocess/bilinear_512_to_448_vjp colsum',
      'clip/logits_per_image',
      'clip/vision_pooler_output',
    ])
      assert.ok(names.includes(n), `missing check ${n}`);
    // the brief's tolerances: 2e-4 on preprocess outputs, 5e-4 on its VJPs, 1e-4 on the CLIP outputs
    for (const c of r.checks) {
      const tol = c.name.startsWith('preprocess/') ? (c.kind === 'gradient' ? 5e-4 : 2e-4) : 1e-4;
      assert.ok(c.relErr <= tol, `${c.name}: ${c.relErr} > ${tol}`);
    }
    assert.ok(!lines.some((l) => l.includes('not disposed')), lines.join('\n'));
  });
}

test('clip and preprocess cases read every size from the fixture: a second layout passes, a corrupted one fails', async () => {
  const root = tmpDir('reno-clip-layout');
  await buildClipSecondLayout(root);
  const other = testBackends().find((b) => b !== 'cpu') ?? 'cpu';
  await useBackend(other, { quiet: true });
  const lines: string[] = [];
  const ok = await runParity(root, { backend: other, cases, write: (l) => lines.push(l) });
  assert.equal(ok.errors.length + ok.failed.length, 0, lines.join('\n'));
  // clip: 7; preprocess: h80w48 (full) 2, sq40 (summaries) 6, bilinear 6
  assert.equal(ok.checks.length, 7 + 2 + 6 + 6, lines.join('\n'));
  for (const [f, name] of [
    ['clip/io/logits_per_image.npy', 'clip/logits_per_image'],
    ['preprocess/io/h80w48_vjp.npy', 'preprocess/h80w48_vjp'],
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
