// Where a run goes and what it leaves: --out at a file, on a read-only or full file system (a clear error naming the
// path, nothing half-written), bad invocations that leave the outputs root empty, what `reno generate` prints on
// stdout (the folder, or --json), the resolved size in run.yaml and the smoke-test mark in the PNGs.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import YAML from 'yaml';
import { REWARDS } from '../../rewards/index.js';
import { compareCommand } from '../../src/commands/compare.js';
import { generateCommand } from '../../src/commands/generate.js';
import { preferenceSynth } from '../../src/commands/preference.js';
import { DataError, OutputError, RenoError } from '../../src/errors.js';
import { readPngText } from '../../src/image/png.js';
import { fsOps, writeFileAtomic } from '../../src/util/files.js';
import { cli, tmpDir } from '../helpers.js';
import { colourTarget, register } from './fake-rewards.js';

/** A test reward that throws a typed error (as a failing model would) at a chosen evaluation. */
register(colourTarget('test_red', [1, 0, 0]), {
  name: 'test_throw',
  description: 'test: a DataError at evaluation 2',
  offset: 0,
  models: [],
  async load() {
    let calls = 0;
    return {
      name: 'test_throw',
      prepare: () => ({
        loss: (input) => {
          if (calls++ >= 2) throw new DataError('test_throw: the reward failed at evaluation 2');
          return tf.tidy(() => tf.mean(input.image) as tf.Scalar);
        },
        score: (input) => tf.tidy(() => tf.mean(input.image) as tf.Scalar),
        dispose() {},
      }),
      dispose() {},
    };
  },
});

const OFF = { imagereward: 0, aesthetic: 0, pickscore: 0, clip: 0, hpsv2: 0, personal: 0 };
const base = {
  prompt: 'a red fox',
  preset: 'tiny',
  backend: 'wasm',
  quiet: true,
  steps: 2,
  overrides: { weights: { ...OFF, test_red: 1 } },
} as const;

/** Everything under dir, recursively (relative paths). */
const tree = (dir: string): string[] => (fs.existsSync(dir) ? (fs.readdirSync(dir, { recursive: true }) as string[]).sort() : []);

/** Mount a tmpfs on dir (options e.g. 'size=16k' or 'ro'); false when this machine does not allow mount. */
function mountTmpfs(t: TestContext, dir: string, options: string): boolean {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    t.skip(`mount not permitted here (${(r.stderr || r.error?.message || 'failed').trim()})`);
    return false;
  }
  t.after(() => {
    spawnSync('umount', [dir]);
  });
  return true;
}

/** An fs error as Node raises it. */
const fsError = (code: string, syscall: string, file: string) =>
  Object.assign(new Error(`${code}: injected, ${syscall} '${file}'`), { code, syscall, path: file });

/** Run fn with one of the writers' fs calls replaced (the seam every writer in src/util/files.ts goes through). */
async function withFs<K extends keyof typeof fsOps, T>(name: K, impl: (typeof fsOps)[K], fn: () => Promise<T>): Promise<T> {
  const orig = fsOps[name];
  fsOps[name] = impl;
  try {
    return await fn();
  } finally {
    fsOps[name] = orig;
  }
}

const TINY = [
  '--preset',
  'tiny',
  '--backend',
  'wasm',
  '--prompt',
  'a red fox',
  '--steps',
  '2',
  '--size',
  '32',
  '--weights.imagereward',
  '0',
  '--weights.clip',
  '0',
  '--weights.pickscore',
  '1',
];

// ---- 1. --out that cannot be written -------------------------------------------------------------------------------

test('CLI: --out at a file is one clear error naming the path (exit 1), no stack trace', async () => {
  const file = path.join(tmpDir(), 'not-a-folder');
  fs.writeFileSync(file, 'x');
  const r = await cli(['generate', ...TINY, '--out', file]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^reno: .*not-a-folder.* not a folder/m);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
  assert.equal(r.stdout, '');
  assert.equal(fs.readFileSync(file, 'utf8'), 'x');
});

test('--out on a read-only file system: an OutputError naming the folder, nothing written', async (t) => {
  const ro = tmpDir();
  if (!mountTmpfs(t, ro, 'ro,size=64k')) return;
  const out = path.join(ro, 'outputs');
  await assert.rejects(
    generateCommand({ ...base, out }),
    (e: Error) => e instanceof OutputError && e.exitCode === 1 && e.message.includes(ro) && /read-only/.test(e.message),
  );
  assert.deepEqual(tree(ro), []);
});

test('--out on a full disk (a 16 KiB tmpfs): an OutputError naming the file, the half-made run folder removed', async (t) => {
  const full = tmpDir();
  if (!mountTmpfs(t, full, 'size=16k')) return;
  await assert.rejects(
    generateCommand({ ...base, out: full }),
    (e: Error) => e instanceof OutputError && e.message.includes(full) && /no space left/.test(e.message),
  );
  assert.deepEqual(tree(full), []);
});

test('a failed write (injected ENOSPC in report.html) removes its temporary file and the invalid run folder', async () => {
  const out = tmpDir();
  const write = fsOps.writeFileSync;
  const err = await withFs(
    'writeFileSync',
    ((file: fs.PathOrFileDescriptor, data: string | NodeJS.ArrayBufferView) => {
      if (!String(file).includes('report.html')) return write(file, data);
      write(file, String(data).slice(0, 100)); // the disk fills half-way through
      throw fsError('ENOSPC', 'write', String(file));
    }) as typeof fsOps.writeFileSync,
    () =>
      generateCommand({ ...base, out }).then(
        () => null,
        (e: unknown) => e,
      ),
  );
  assert.ok(err instanceof OutputError, String(err));
  assert.match(err.message, /report\.html: no space left on the device/);
  assert.deepEqual(tree(out), []);
});

test('writeFileAtomic: a failed write leaves neither the temporary file nor the target', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'report.html');
  const write = fsOps.writeFileSync;
  fsOps.writeFileSync = ((f: fs.PathOrFileDescriptor, d: string) => {
    write(f, d.slice(0, 3));
    throw fsError('ENOSPC', 'write', String(f));
  }) as typeof fsOps.writeFileSync;
  try {
    assert.throws(
      () => writeFileAtomic(file, 'hello world'),
      (e: Error) => e instanceof OutputError && e.message.includes(file),
    );
  } finally {
    fsOps.writeFileSync = write;
  }
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('an injected read-only folder (EROFS on mkdir): an OutputError naming the run folder', async () => {
  const out = path.join(tmpDir(), 'outputs');
  const err = await withFs(
    'mkdirSync',
    ((p: fs.PathLike) => {
      throw fsError('EROFS', 'mkdir', String(p));
    }) as typeof fsOps.mkdirSync,
    () =>
      generateCommand({ ...base, out }).then(
        () => null,
        (e: unknown) => e,
      ),
  );
  assert.ok(err instanceof OutputError, String(err));
  assert.match(err.message, /outputs.*read-only file system/);
  assert.equal(fs.existsSync(out), false);
});

test('preference synth --out at a file: an OutputError naming the path, not a stack trace', async () => {
  const file = path.join(tmpDir(), 'not-a-folder');
  fs.writeFileSync(file, 'x');
  await assert.rejects(
    preferenceSynth({ out: file, users: 2, pairsPerUser: 6, quiet: true }),
    (e: Error) => e instanceof OutputError && e.message.includes(file),
  );
  assert.equal(fs.readFileSync(file, 'utf8'), 'x');
});

// ---- 2. nothing is created for a run that cannot start; a failed run leaves no invalid folder --------------------

test('bad invocations leave the outputs root empty (generate and compare)', async () => {
  const out = tmpDir();
  const emptyModels = tmpDir();
  const badHistory = path.join(tmpDir(), 'history.json');
  fs.writeFileSync(badHistory, '{ "pairs": [ { "prompt": "x", "liked": "missing.png" } ] }');
  const bad: [string, () => Promise<unknown>][] = [
    ['--size 100 (not a multiple of 16)', () => generateCommand({ ...base, out, size: '100' })],
    ['--size 100x64', () => generateCommand({ ...base, out, size: '100x64' })],
    ['an unknown config key', () => generateCommand({ ...base, out, overrides: { ...base.overrides, bogus: 1 } })],
    ['a missing model', () => generateCommand({ ...base, preset: undefined, modelsDir: emptyModels, out })],
    [
      'a missing history',
      () => generateCommand({ ...base, out, user: path.join(emptyModels, 'none.json'), overrides: { weights: { ...OFF, personal: 1 } } }),
    ],
    ['a bad history', () => generateCommand({ ...base, out, user: badHistory, overrides: { weights: { ...OFF, personal: 1 } } })],
    ['compare --size 100', () => compareCommand({ ...base, out, size: '100', rewards: ['test_red'] })],
    ['compare with a missing model', () => compareCommand({ ...base, preset: undefined, modelsDir: emptyModels, out, rewards: ['test_red'] })],
  ];
  for (const [what, run] of bad) {
    await assert.rejects(run(), (e: Error) => e instanceof RenoError, what);
    assert.deepEqual(tree(out), [], what);
  }
});

test('a run that fails mid-way (a reward error) removes its incomplete folder; so does compare', async () => {
  const out = tmpDir();
  await assert.rejects(generateCommand({ ...base, out, steps: 5, overrides: { weights: { ...OFF, test_throw: 1 } } }), /failed at evaluation 2/);
  assert.deepEqual(tree(out), []);
  await assert.rejects(compareCommand({ ...base, out, steps: 5, rewards: ['test_throw'] }), /failed at evaluation 2/);
  assert.deepEqual(tree(out), []);
});

// ---- 3. stdout ---------------------------------------------------------------------------------------------------

test('CLI: generate prints the run folder on stdout; --quiet keeps it', async () => {
  const out = tmpDir();
  const r = await cli(['generate', ...TINY, '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, r.stdout);
  assert.ok(path.isAbsolute(lines[0]), lines[0]);
  assert.equal(path.dirname(lines[0]), fs.realpathSync(out));
  for (const f of ['run.yaml', 'best.png', 'report.html']) assert.ok(fs.existsSync(path.join(lines[0], f)), f);
});

test('CLI: generate --json prints a summary: folder, best step, losses and every reward score at init and best', async () => {
  const out = tmpDir();
  const r = await cli(['generate', ...TINY, '--weights.aesthetic', '1', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /1\/2/); // progress still on stderr without --quiet
  const s = JSON.parse(r.stdout);
  assert.equal(path.dirname(s.folder), fs.realpathSync(out));
  const metrics = fs
    .readFileSync(path.join(s.folder, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const best = metrics.reduce((a, b) => (b.total < a.total ? b : a));
  assert.equal(s.best_step, best.step);
  assert.equal(s.best.step, best.step);
  assert.equal(s.best.total_loss, best.total);
  assert.equal(s.init.step, 0);
  assert.equal(s.init.total_loss, metrics[0].total);
  assert.deepEqual(Object.keys(s.init.scores).sort(), ['aesthetic', 'pickscore']);
  assert.deepEqual(Object.keys(s.best.scores).sort(), ['aesthetic', 'pickscore']);
  // scores are the rewards' "higher is better" values: offset - loss
  const offset = REWARDS.find((r) => r.name === 'pickscore')!.offset;
  assert.ok(Math.abs(s.init.scores.pickscore - (offset - metrics[0].rewards.pickscore)) < 1e-9);
  assert.ok(Math.abs(s.best.scores.aesthetic - (REWARDS.find((r) => r.name === 'aesthetic')!.offset - best.rewards.aesthetic)) < 1e-9);
  assert.equal(s.stopped, null);
  assert.equal(s.smoke_test, true);
});

// ---- 4. run.yaml's size and the PNGs' smoke-test mark --------------------------------------------------------------

test('run.yaml records the size used (native when none given, else --size); the PNGs say smoke test', async () => {
  const out = tmpDir();
  const native = await generateCommand({ ...base, out });
  const y = YAML.parse(fs.readFileSync(path.join(native.dir, 'run.yaml'), 'utf8'));
  assert.equal(y.width, 64);
  assert.equal(y.height, 64);
  const sized = await generateCommand({ ...base, out, size: '48x32' });
  const y2 = YAML.parse(fs.readFileSync(path.join(sized.dir, 'run.yaml'), 'utf8'));
  assert.deepEqual([y2.width, y2.height], [48, 32]);
  for (const f of ['init.png', 'best.png']) {
    const text = readPngText(fs.readFileSync(path.join(native.dir, f)));
    assert.equal(JSON.parse(text.reno).smoke_test, true, f);
    assert.match(text.parameters, /Smoke test: random weights/, f);
  }
});
