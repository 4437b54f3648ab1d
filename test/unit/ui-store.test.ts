// `reno ui`'s history store and gallery listing, without a browser: a failed write leaves history.json as it was
// (atomic rewrite), undo to zero pairs is a valid start again, and Browse lists run, compare and sweep folders.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readHistory } from '../../src/data/history.js';
import { OutputError } from '../../src/errors.js';
import { fsOps } from '../../src/util/files.js';
import { HistoryStore } from '../../src/ui/history-store.js';
import { listRuns } from '../../src/ui/runs.js';
import { ROOT, tmpDir } from '../helpers.js';

const IMG = (n: string) => path.join(ROOT, 'examples', 'images', n);

test('history store: append, a failed write changes nothing, undo back to an empty (valid) start', () => {
  const dir = tmpDir('reno-ui-store');
  const file = path.join(dir, 'alice.json');
  const s = new HistoryStore(file);
  assert.deepEqual(s.state(), { file, pairs: 0, error: null });
  assert.equal(s.append('a cat', IMG('pair1-liked.png'), IMG('pair1-disliked.png')).pairs, 1);
  const before = fs.readFileSync(file, 'utf8');
  const h = readHistory(file);
  assert.equal(h.user, 'alice');
  assert.deepEqual(fs.readFileSync(h.pairs[0].liked), fs.readFileSync(IMG('pair1-liked.png')));
  // the disk fills up while the history is rewritten: the old file stays, no temporary file is left
  const orig = fsOps.renameSync;
  fsOps.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
    if (String(to) === file) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    return orig(from, to);
  }) as typeof fsOps.renameSync;
  try {
    assert.throws(
      () => s.append('a dog', IMG('pair2-liked.png'), IMG('pair2-disliked.png')),
      (e: unknown) => e instanceof OutputError && e.message.includes(file) && /no space left/.test(e.message),
    );
  } finally {
    fsOps.renameSync = orig;
  }
  assert.equal(fs.readFileSync(file, 'utf8'), before);
  assert.deepEqual(
    fs.readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
  );
  assert.deepEqual(
    fs.readdirSync(path.join(dir, 'images')).sort(),
    h.pairs
      .flatMap((p) => [p.disliked, p.liked])
      .map((f) => path.basename(f))
      .sort(),
    "the failed choice's copies are removed",
  );
  assert.equal(s.undo().pairs, 0);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { user: 'alice', pairs: [] });
  assert.deepEqual(s.state(), { file, pairs: 0, error: null }, 'an emptied history is a valid start');
  assert.throws(() => s.undo(), /no pair to undo/);
  // a history with a bad field is reported by name, not rewritten
  fs.writeFileSync(file, JSON.stringify({ user: 'alice', pairs: [{ prompt: 'x', liked: 'nope.png', disliked: 'nope2.png' }] }));
  assert.match(s.state().error ?? '', /pairs\[0\]\.liked: image not found/);
  assert.throws(() => s.append('a', IMG('pair1-liked.png'), IMG('pair1-disliked.png')), /image not found/);
});

test('Browse lists run, compare and sweep folders, newest first, and skips anything else', () => {
  const root = tmpDir('reno-ui-runs');
  const mk = (name: string, files: Record<string, string>, t: number) => {
    fs.mkdirSync(path.join(root, name));
    for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(root, name, f), v);
    fs.utimesSync(path.join(root, name), t, t);
  };
  const metrics = [
    { step: 0, total: 5, rewards: { clip: 5 }, best: true },
    { step: 1, total: 4, rewards: { clip: 4 }, best: true },
    { step: 2, total: 4.5, rewards: { clip: 4.5 }, best: false },
  ];
  mk(
    'run-a',
    {
      'run.yaml': 'prompt: a fox\nseed: 7\nsteps: 5\noptimize: true\n',
      'init.png': 'x',
      'best.png': 'x',
      'report.html': 'x',
      'metrics.jsonl': metrics.map((m) => JSON.stringify(m)).join('\n') + '\n{"step":3,',
    },
    1000,
  );
  mk('cmp', { 'compare.json': JSON.stringify({ prompt: 'a cat' }), 'grid.png': 'x', 'report.html': 'x' }, 2000);
  mk('swp', { 'summary.csv': 'a', 'grid.png': 'x', 'report.html': 'x' }, 3000);
  mk('half-run', { 'run.yaml': 'prompt: x\n' }, 4000);
  fs.writeFileSync(path.join(root, 'notes.txt'), 'x');
  const runs = listRuns(root);
  assert.deepEqual(
    runs.map((r) => [r.kind, r.name]),
    [
      ['sweep', 'swp'],
      ['compare', 'cmp'],
      ['run', 'run-a'],
    ],
  );
  const r = runs[2];
  assert.equal(r.prompt, 'a fox');
  assert.equal(r.seed, 7);
  assert.deepEqual(r.best, { step: 1, total: 4, rewards: { clip: 4 } });
  assert.deepEqual(r.init, { total: 5 });
  assert.equal(r.stopped, true, '3 of 5 steps');
  assert.deepEqual(r.images, ['run-a/init.png', 'run-a/best.png']);
  assert.equal(r.report, 'run-a/report.html');
  assert.equal(runs[1].prompt, 'a cat');
  assert.deepEqual(runs[1].images, ['cmp/grid.png']);
});
