import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { addPngText, encodePng, readImage, readPngText } from '../../src/image/png.js';
import { gaussian, seededNoise } from '../../src/optimize/noise.js';
import { newRunDir, slugify, writeFileAtomic } from '../../src/util/files.js';
import { backend, ROOT, tmpDir } from '../helpers.js';

test('one CRC-32, Node\'s zlib.crc32 (the PNG constant of "IEND"); no hand-written CRC table in the sources', () => {
  assert.equal(crc32(Buffer.from('IEND', 'latin1')), 0xae426082);
  const own: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && /0xedb88320/i.test(fs.readFileSync(p, 'utf8'))) own.push(path.relative(ROOT, p));
    }
  };
  for (const d of ['src', 'generators', 'rewards']) walk(path.join(ROOT, d));
  assert.deepEqual(own, []);
});

test('every chunk of a PNG with text has the CRC its bytes need', async () => {
  await backend();
  const img = tf.tensor4d([0, 0.5, 1], [1, 1, 1, 3]);
  const png = await encodePng(img, { parameters: 'a fox\nSteps: 1, Seed: 2, Size: 1x1', reno: '{}' });
  tf.dispose(img);
  let off = 8;
  const types: string[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    types.push(png.toString('latin1', off + 4, off + 8));
    assert.equal(png.readUInt32BE(off + 8 + len), crc32(png.subarray(off + 4, off + 8 + len)), types.at(-1));
    off += 12 + len;
  }
  assert.deepEqual(types.filter((t) => t === 'iTXt').length, 2);
});

test('PNG text chunks round-trip (UTF-8) and the image decodes back', async () => {
  await backend();
  const img = tf.tensor4d([0, 0.5, 1, 1, 0, 0.25], [1, 1, 2, 3]);
  const png = await encodePng(img, { prompt: 'un café ☕', seed: '3' });
  assert.deepEqual(readPngText(png), { prompt: 'un café ☕', seed: '3' });
  const d = tmpDir();
  const f = path.join(d, 'x.png');
  fs.writeFileSync(f, png);
  const back = await readImage(f);
  assert.deepEqual(back.shape, [1, 1, 2, 3]);
  const v = back.dataSync();
  assert.deepEqual(
    [...v].map((x) => Math.round(x * 255)),
    [0, 128, 255, 255, 0, 64],
  );
  assert.deepEqual(readPngText(addPngText(png, { more: 'yes' })).more, 'yes');
  tf.dispose([img, back]);
});

test('seeded noise is deterministic, standard normal, NCHW-ordered', async () => {
  await backend();
  const a = gaussian(20000, 1);
  const b = gaussian(20000, 1);
  assert.deepEqual(a, b);
  assert.notDeepEqual(gaussian(10, 2), gaussian(10, 1));
  let m = 0,
    s = 0;
  for (const x of a) m += x;
  m /= a.length;
  for (const x of a) s += (x - m) ** 2;
  s = Math.sqrt(s / a.length);
  assert.ok(Math.abs(m) < 0.03 && Math.abs(s - 1) < 0.03, `mean ${m} std ${s}`);
  const z = seededNoise([1, 2, 3, 4], 5);
  const flat = gaussian(24, 5); // NCHW: channel-major
  const v = z.dataSync();
  assert.equal(v[(1 * 3 + 2) * 4 + 3], flat[(3 * 2 + 1) * 3 + 2]); // z[0, y=1, x=2, c=3] == nchw[0, 3, 1, 2]
  z.dispose();
});

test('run folders and atomic writes', () => {
  const d = tmpDir();
  assert.equal(slugify('A red fox, in the SNOW!'), 'a-red-fox-in-the-snow');
  assert.equal(slugify('!!!'), 'run');
  const r1 = newRunDir(d, 'cat', new Date(2026, 0, 2, 3, 4, 5));
  const r2 = newRunDir(d, 'cat', new Date(2026, 0, 2, 3, 4, 5));
  assert.equal(path.basename(r1), '20260102-030405-cat');
  assert.equal(path.basename(r2), '20260102-030405-cat-2');
  writeFileAtomic(path.join(r1, 'a', 'b.txt'), 'hi');
  assert.equal(fs.readFileSync(path.join(r1, 'a', 'b.txt'), 'utf8'), 'hi');
  assert.deepEqual(fs.readdirSync(path.join(r1, 'a')), ['b.txt']);
});
