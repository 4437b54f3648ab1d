// The generator's parity cases against the upstream fixtures, on every test backend, and the same runner on a
// second fixture root with other sizes.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { parityCommand } from '../../src/commands/parity.js';
import { readNpy, writeNpy } from '../../src/weights/npy.js';
import { PARITY, testBackends, tmpDir } from '../helpers.js';
import { buildSecondLayout } from './second-layout.js';

const CASES = ['text_encoder', 'unet', 'vae', 'pipeline_onestep'];

for (const be of testBackends()) {
  test(`upstream fixtures pass on ${be}: ${CASES.join(', ')}`, async () => {
    const lines: string[] = [];
    const { code, result } = await parityCommand({ root: PARITY, backend: be, only: CASES, write: (l) => lines.push(l) });
    assert.equal(code, 0, lines.join('\n'));
    const names = result.checks.map((c) => c.name);
    for (const n of [
      'unet/out_sample[0] (t=999)',
      'unet/out_sample[1] (t=37)',
      'vae/decoded',
      'vae/enc_mean',
      'pipeline_onestep/grad_noise',
      'text_encoder/hidden_states',
    ])
      assert.ok(names.includes(n), `missing check ${n}`);
    assert.ok(result.checks.every((c) => c.relErr < (c.kind === 'gradient' ? 1e-3 : 1e-4)));
  });
}

test('the runner reads every size from the fixture: a second layout passes, a corrupted reference fails', async () => {
  const root = tmpDir('reno-layout');
  await buildSecondLayout(root);
  const other = testBackends().find((b) => b !== 'cpu') ?? 'cpu';
  const lines: string[] = [];
  const ok = await parityCommand({ root, backend: other, write: (l) => lines.push(l) });
  assert.equal(ok.code, 0, lines.join('\n'));
  assert.equal(ok.result.checks.length, 2 + 3 + 3 + 8, lines.join('\n'));
  // corrupt one reference value: the runner must fail and name the tensor
  const f = path.join(root, 'unet', 'io', 'out_sample.npy');
  const ref = readNpy(f);
  const data = Float32Array.from(ref.data);
  data[5] += 0.1;
  writeNpy(f, ref.shape, data);
  const bad = await parityCommand({ root, backend: other, only: ['unet'], write: () => {} });
  assert.equal(bad.code, 1);
  assert.ok(bad.result.failed.some((c) => c.name === 'unet/out_sample'));
  fs.rmSync(root, { recursive: true, force: true });
});
