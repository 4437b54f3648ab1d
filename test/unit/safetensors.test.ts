import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { WeightsError } from '../../src/errors.js';
import { SafetensorsFile, openSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { bf16ToF32, f16ToF32 } from '../../src/weights/source.js';
import { PARITY, tmpDir } from '../helpers.js';

function rawFile(file: string, header: unknown, data: Buffer, lenOverride?: bigint): void {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lenOverride ?? BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, data]));
}

test('reads a fixture file written by diffusers', () => {
  const f = new SafetensorsFile(path.join(PARITY, 'unet', 'diffusion_pytorch_model.safetensors'));
  const info = f.info('conv_in.weight');
  assert.deepEqual(info?.shape, [16, 4, 3, 3]);
  assert.equal(f.read('conv_in.weight').length, 16 * 4 * 9);
  assert.equal(f.keys().length, 494);
  f.close();
});

test('round-trips float32 tensors and metadata', () => {
  const d = tmpDir();
  const file = path.join(d, 'x.safetensors');
  const a = Float32Array.from([1, -2, 3.5, 4, 5, 6]);
  writeSafetensors(file, [['a.weight', { shape: [2, 3], data: a }]], { format: 'pt' });
  const f = new SafetensorsFile(file);
  assert.deepEqual([...f.read('a.weight')], [...a]);
  assert.equal(f.metadata.format, 'pt');
  f.close();
});

test('widens F16 and BF16 to float32', () => {
  const d = tmpDir();
  const file = path.join(d, 'h.safetensors');
  const h = Buffer.alloc(8);
  h.writeUInt16LE(0x3c00, 0); // 1.0
  h.writeUInt16LE(0xc000, 2); // -2.0
  h.writeUInt16LE(0x3555, 4); // 0.33325
  h.writeUInt16LE(0x0001, 6); // smallest subnormal
  const b = Buffer.alloc(4);
  b.writeUInt16LE(0x3f80, 0); // bf16 1.0
  b.writeUInt16LE(0xc040, 2); // bf16 -3.0
  rawFile(
    file,
    { h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] }, b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] } },
    Buffer.concat([h, b]),
  );
  const f = new SafetensorsFile(file);
  const hv = f.read('h');
  assert.equal(hv[0], 1);
  assert.equal(hv[1], -2);
  assert.ok(Math.abs(hv[2] - 0.33325) < 1e-4);
  assert.equal(hv[3], 2 ** -24);
  assert.deepEqual([...f.read('b')], [1, -3]);
  assert.deepEqual([...f16ToF32(Uint16Array.from([0x7c00]))], [Infinity]);
  assert.deepEqual([...bf16ToF32(Uint16Array.from([0x4000]))], [2]);
  f.close();
});

test('sharded index files are merged', () => {
  const d = tmpDir();
  writeSafetensors(path.join(d, 'model-00001-of-00002.safetensors'), [['a', { shape: [2], data: Float32Array.from([1, 2]) }]]);
  writeSafetensors(path.join(d, 'model-00002-of-00002.safetensors'), [['b', { shape: [1], data: Float32Array.from([3]) }]]);
  fs.writeFileSync(
    path.join(d, 'model.safetensors.index.json'),
    JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }),
  );
  const s = openSafetensors(path.join(d, 'model.safetensors.index.json'));
  assert.deepEqual(s.keys().sort(), ['a', 'b']);
  assert.deepEqual([...s.read('b')], [3]);
  s.close();
});

test('bad files give one clear error each', () => {
  const d = tmpDir();
  const good = path.join(d, 'good.safetensors');
  writeSafetensors(good, [['w', { shape: [4], data: new Float32Array(4) }]]);
  const bytes = fs.readFileSync(good);

  const truncated = path.join(d, 'truncated.safetensors');
  fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 4));
  assert.throws(
    () => new SafetensorsFile(truncated),
    (e: Error) => e instanceof WeightsError && /tensor w: .*truncated/.test(e.message),
  );

  const tiny = path.join(d, 'tiny.safetensors');
  fs.writeFileSync(tiny, Buffer.from([1, 2, 3]));
  assert.throws(() => new SafetensorsFile(tiny), /shorter than the 8-byte header length/);

  const pastEnd = path.join(d, 'past.safetensors');
  rawFile(pastEnd, { w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, Buffer.alloc(4), 1000000n);
  assert.throws(() => new SafetensorsFile(pastEnd), /header length 1000000 runs past the end of the file/);

  const dtype = path.join(d, 'dtype.safetensors');
  rawFile(dtype, { w: { dtype: 'Q4', shape: [2], data_offsets: [0, 1] } }, Buffer.alloc(1));
  assert.throws(() => new SafetensorsFile(dtype), /tensor w: unknown dtype "Q4"/);

  const badJson = path.join(d, 'json.safetensors');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(3n);
  fs.writeFileSync(badJson, Buffer.concat([len, Buffer.from('{x:')]));
  assert.throws(() => new SafetensorsFile(badJson), /header is not valid JSON/);

  const wrongSize = path.join(d, 'size.safetensors');
  rawFile(wrongSize, { w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, Buffer.alloc(8));
  assert.throws(() => new SafetensorsFile(wrongSize), /hold 8 bytes, shape \[3\] F32 needs 12/);

  assert.throws(() => new SafetensorsFile(path.join(d, 'absent.safetensors')), /cannot open .*absent\.safetensors/);
});
