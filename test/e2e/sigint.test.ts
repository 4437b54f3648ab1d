// A real Ctrl-C: `reno generate` in a child process gets SIGINT mid-run, finishes the current step, writes a valid
// run folder (best image so far, report, metrics) and exits with 130.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readPngText } from '../../src/image/png.js';
import { sweepCommand } from '../../src/commands/sweep.js';
import { spawnCli, tmpDir } from '../helpers.js';

test('SIGINT mid-run leaves a loadable folder with the best image so far', async () => {
  const out = tmpDir();
  const child = spawnCli([
    'generate',
    '--preset',
    'tiny',
    '--backend',
    'wasm',
    '--prompt',
    'a red fox',
    '--steps',
    '500',
    '--out',
    out,
    '--weights.imagereward',
    '0',
    '--weights.clip',
    '0',
    '--weights.pickscore',
    '1',
  ]);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const metrics = () => {
    const runs = fs.existsSync(out) ? fs.readdirSync(out) : [];
    const f = runs.length ? path.join(out, runs[0], 'metrics.jsonl') : '';
    return f && fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).length : 0;
  };
  const deadline = Date.now() + 120_000;
  while (metrics() < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.ok(metrics() >= 3, `the run did not start: ${stderr}`);
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /stopping after the current step/);
  const dir = path.join(out, fs.readdirSync(out)[0]);
  for (const f of ['run.yaml', 'init.png', 'best.png', 'report.html', 'metrics.jsonl']) assert.ok(fs.existsSync(path.join(dir, f)), f);
  const n = metrics();
  assert.ok(n >= 3 && n < 500, `${n} steps`);
  const lines = fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const best = lines.reduce((a, b) => (b.total < a.total ? b : a));
  assert.equal(JSON.parse(readPngText(fs.readFileSync(path.join(dir, 'best.png'))).reno).step, best.step);
  assert.deepEqual(
    fs.readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
  );
});

test('SIGINT during a sweep: exit 130, finished cells kept, the interrupted cell not counted as done, a rerun resumes it', async () => {
  const d = tmpDir();
  const file = path.join(d, 'sweep.yaml');
  // cell 1 is short and finishes; cell 2 is long and is interrupted
  fs.writeFileSync(
    file,
    'base:\n  prompt: a red fox\n  weights: { imagereward: 0, clip: 0, aesthetic: 0, hpsv2: 0, pickscore: 1 }\ngrid:\n  steps: [2, 500]\n',
  );
  const out = path.join(d, 'out');
  const child = spawnCli(['sweep', file, '--preset', 'tiny', '--backend', 'wasm', '--out', out]);
  let stderr = '';
  child.stderr.on('data', (x) => (stderr += x));
  const cellDirs = () =>
    fs.existsSync(out)
      ? fs
          .readdirSync(out)
          .filter((f) => /^cell-\d+-[0-9a-f]+$/.test(f))
          .sort()
      : [];
  const lines = (dir: string) => {
    const f = path.join(out, dir, 'metrics.jsonl');
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).length : 0;
  };
  const deadline = Date.now() + 120_000;
  while (!(cellDirs().length === 2 && lines(cellDirs()[1]) >= 3) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.ok(cellDirs().length === 2 && lines(cellDirs()[1]) >= 3, `the second cell did not start: ${stderr}`);
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /sweep interrupted: 1 of 2 cells done/);
  const [first, second] = cellDirs().map((c) => path.join(out, c));
  assert.ok(fs.existsSync(path.join(first, 'done.json')));
  assert.ok(!fs.existsSync(path.join(second, 'done.json')), 'the interrupted cell is marked done');
  assert.ok(fs.existsSync(path.join(second, 'best.png')), 'the interrupted cell keeps its best image so far');
  assert.equal(fs.readFileSync(path.join(out, 'summary.csv'), 'utf8').trim().split('\n').length, 2);
  assert.deepEqual(
    fs.readdirSync(out).filter((f) => f.endsWith('.claim')),
    [],
  );
  // a rerun skips the finished cell and redoes the interrupted one (planned only here: stopAfter 0)
  const again = await sweepCommand({ file, out, preset: 'tiny', backend: 'wasm', quiet: true, stopAfter: 0 });
  assert.deepEqual(
    again.cells.map((c) => c.skipped),
    [true, false],
  );
});
