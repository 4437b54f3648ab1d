// history.json (design.md): paths relative to the file, absolute paths and file: URLs; empty prompts; the last
// N_ref pairs; and every validation error naming the pair index and the field (a missing image by its path).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { lastPairs, parseHistory, readHistory } from '../../src/data/history.js';
import { DataError } from '../../src/errors.js';
import { ROOT, tmpDir } from '../helpers.js';

function setup(): { dir: string; file: string } {
  const dir = tmpDir('reno-history');
  fs.mkdirSync(path.join(dir, 'img'));
  for (const n of ['a', 'b', 'c', 'd']) fs.writeFileSync(path.join(dir, 'img', `${n}.png`), 'not really a png');
  return { dir, file: path.join(dir, 'history.json') };
}

const write = (file: string, v: unknown) => fs.writeFileSync(file, typeof v === 'string' ? v : JSON.stringify(v));
const fails = (file: string, re: RegExp) =>
  assert.throws(
    () => readHistory(file),
    (e: Error) => e instanceof DataError && re.test(e.message),
    String(re),
  );

test('paths: relative to the file, absolute, file: URL; prompt may be empty or absent; "model" resolved', () => {
  const { dir, file } = setup();
  const abs = path.join(dir, 'img', 'c.png');
  fs.mkdirSync(path.join(dir, 'ckpt'));
  write(file, {
    user: 'alice',
    model: 'ckpt',
    pairs: [
      { prompt: 'a castle at dusk', liked: 'img/a.png', disliked: 'img/b.png' },
      { prompt: '', liked: abs, disliked: pathToFileURL(path.join(dir, 'img', 'd.png')).href },
      { liked: 'img/b.png', disliked: 'img/a.png' },
    ],
  });
  const h = readHistory(file);
  assert.equal(h.user, 'alice');
  assert.equal(h.model, path.join(dir, 'ckpt'));
  assert.deepEqual(
    h.pairs.map((p) => [p.index, p.prompt]),
    [
      [0, 'a castle at dusk'],
      [1, ''],
      [2, ''],
    ],
  );
  assert.equal(h.pairs[0].liked, path.join(dir, 'img', 'a.png'));
  assert.equal(h.pairs[1].liked, abs);
  assert.equal(h.pairs[1].disliked, path.join(dir, 'img', 'd.png'));
  assert.deepEqual(
    lastPairs(h, 2).map((p) => p.index),
    [1, 2],
  );
  assert.deepEqual(
    lastPairs(h, 8).map((p) => p.index),
    [0, 1, 2],
  );
  assert.throws(() => lastPairs(h, 0), DataError);
});

test('errors name the pair index and the field; a missing image is named with its path', () => {
  const { dir, file } = setup();
  const ok = { prompt: 'p', liked: 'img/a.png', disliked: 'img/b.png' };
  write(file, { pairs: [ok, { ...ok, liked: 'img/missing.png' }] });
  fails(file, new RegExp(`pairs\\[1\\]\\.liked: image not found: ${path.join(dir, 'img', 'missing.png').replace(/[/\\]/g, '.')}`));
  write(file, { pairs: [ok, ok, { prompt: 'p', liked: 'img/a.png' }] });
  fails(file, /pairs\[2\]\.disliked is missing/);
  write(file, { pairs: [{ ...ok, prompt: 3 }] });
  fails(file, /pairs\[0\]\.prompt must be a string/);
  write(file, { pairs: [{ ...ok, disliked: '' }] });
  fails(file, /pairs\[0\]\.disliked must be a path/);
  write(file, { pairs: [ok, { ...ok, like: 'img/a.png' }] });
  fails(file, /pairs\[1\]: unknown field "like"/);
  write(file, { pairs: [ok, 'img/a.png'] });
  fails(file, /pairs\[1\] must be an object/);
  write(file, { pairs: [{ ...ok, liked: 'img' }] });
  fails(file, /pairs\[0\]\.liked: not a file/);
  write(file, { pairs: [{ ...ok, liked: 'https://example.com/a.png' }] });
  fails(file, /pairs\[0\]\.liked: only local files/);
  write(file, { pairs: [] });
  fails(file, /"pairs" is empty/);
  write(file, { user: 'x' });
  fails(file, /"pairs" must be a list/);
  write(file, { pairs: [ok], extra: 1 });
  fails(file, /unknown key "extra"/);
  write(file, { pairs: [ok], model: 'nowhere' });
  fails(file, /"model": preference checkpoint not found/);
  write(file, '{ "pairs": [');
  fails(file, /not valid JSON/);
  fails(path.join(dir, 'none.json'), /history not found/);
  // without file checks the structure is still validated
  assert.equal(parseHistory({ pairs: [{ liked: 'x.png', disliked: 'y.png' }] }, file, { checkFiles: false }).pairs.length, 1);
});

test('the committed example history is valid and its images exist', () => {
  const h = readHistory(path.join(ROOT, 'examples', 'history.json'));
  assert.ok(h.pairs.length >= 3);
  for (const p of h.pairs) assert.ok(p.prompt.length > 0 && fs.existsSync(p.liked) && fs.existsSync(p.disliked));
});
