// A real Ctrl-C: `reno generate` in a child process gets SIGINT mid-run, finishes the current step, writes a valid
// run folder (best image so far, report, metrics) and exits with 130.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readPngText } from '../../src/image/png.js';
import { ROOT, tmpDir } from '../helpers.js';

test('SIGINT mid-run leaves a loadable folder with the best image so far', async () => {
  const out = tmpDir();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src/cli/run.ts'), 'generate', '--preset', 'tiny', '--backend', 'wasm', '--prompt', 'a red fox', '--steps', '500', '--out', out, '--weights.imagereward', '0', '--weights.clip', '0', '--weights.pickscore', '1'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
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
  const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const best = lines.reduce((a, b) => (b.total < a.total ? b : a));
  assert.equal(readPngText(fs.readFileSync(path.join(dir, 'best.png'))).step, String(best.step));
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp-')), []);
});
