// The CLI as a user runs it (a child process): a usage error stops before any work with one "reno:" line and exit 2;
// bad numbers are quoted as given; --guidance without --user is refused; --help lists every config key and every
// reward's weight with a description and the default from configs/default.yaml.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { REWARDS } from '../../rewards/index.js';
import { generateConfig } from '../../src/commands/generate.js';
import { SCHEMA } from '../../src/config/run-config.js';
import { ROOT, tmpDir } from '../helpers.js';

function reno(args: string[]): { code: number | null; stdout: string; stderr: string; errors: string[] } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/run.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, errors: r.stderr.split('\n').filter((l) => l.startsWith('reno:')) };
}

const HISTORY = path.join(ROOT, 'examples', 'history.json');
const IMAGE = path.join(ROOT, 'examples', 'images', 'pair1-liked.png');

/** Runs reno with an --out folder that must not be created; returns the result. */
function usageError(args: string[], message: RegExp): ReturnType<typeof reno> {
  const out = path.join(tmpDir('reno-cli'), 'out');
  const r = reno([...args, '--out', out]);
  assert.equal(r.code, 2, `exit code of reno ${args.join(' ')}\n${r.stderr}`);
  assert.equal(r.errors.length, 1, `one error line, got:\n${r.stderr}`);
  assert.match(r.errors[0], message);
  assert.doesNotMatch(r.stderr, /internal error/);
  assert.ok(!fs.existsSync(out), `reno ${args.join(' ')} created its output folder`);
  return r;
}

test('a usage error stops before any work, with one error line and exit 2', () => {
  // an unknown argument: the command used to run anyway (synth writes its world), then exit 2
  usageError(['preference', 'synth', '--users', '2', '--frob'], /^reno: Unknown argument: frob/);
  usageError(['preference', 'attention', '--preset', 'tiny'], /^reno: Missing required arguments: model, data/);
  // a bad choice and a missing --prompt used to print two errors
  usageError(['generate', '--preset', 'tiny', '--prompt', 'x', '--guidance', 'maybe'], /^reno: Invalid values:/);
  usageError(['compare', '--preset', 'tiny'], /^reno: Missing required argument: prompt/);
  usageError(['score', '--prompt', 'x'], /^reno: Not enough non-option arguments/);
  // an option without its value
  usageError(['generate', '--preset', 'tiny', '--prompt', 'x', '--steps'], /^reno: Not enough arguments following: steps/);
});

test('an unknown flag of generate is rejected (strict), an unknown reward weight too', () => {
  usageError(['generate', '--preset', 'tiny', '--prompt', 'x', '--bogus', '1'], /^reno: Unknown argument: bogus/);
  usageError(['generate', '--preset', 'tiny', '--prompt', 'x', '--weights.frob', '1'], /^reno: .*weights\.frob.*unknown reward "frob"/);
});

test('a number flag that is not a number is quoted as given', () => {
  usageError(['generate', '--preset', 'tiny', '--prompt', 'x', '--steps', 'abc'], /^reno: --steps must be an integer >= 1, found "abc"$/);
  usageError(['generate', '--preset', 'tiny', '--prompt', 'x', '--lr', 'fast'], /^reno: --lr must be a number > 0, found "fast"$/);
  usageError(
    ['generate', '--preset', 'tiny', '--prompt', 'x', '--weights.clip', 'lots'],
    /^reno: --weights\.clip must be a number >= 0, found "lots"$/,
  );
  usageError(['compare', '--preset', 'tiny', '--prompt', 'x', '--seed', '1.5'], /^reno: --seed must be an integer >= 0, found "1\.5"$/);
  // --n-ref and --n_ref are both n_ref
  usageError(['generate', '--preset', 'tiny', '--prompt', 'x', '--n-ref', '0'], /^reno: --n-ref must be an integer >= 1, found "0"$/);
  usageError(['generate', '--preset', 'tiny', '--prompt', 'x', '--n_ref', 'two'], /^reno: --n-ref must be an integer >= 1, found "two"$/);
  usageError(['generate', '--preset', 'tiny', '--prompt', 'x', '--steps', '2', '--steps', '3'], /^reno: --steps was given more than once$/);
  usageError(['preference', 'synth', '--users', 'many'], /^reno: --users must be an integer >= 1, found "many"$/);
  usageError(['preference', 'attention', '--model', 'm', '--data', 'd', '--orders', 'abc'], /^reno: --orders must be an integer >= 1, found "abc"$/);
  usageError(['preference', 'tsne', '--model', 'm', '--data', 'd', '--perplexity', 'x'], /^reno: --perplexity must be a number > 0, found "x"$/);
});

test('--guidance without --user is refused, naming both flags', () => {
  const msg = /^reno: --guidance \w+ needs --user/;
  usageError(['generate', '--preset', 'tiny', '--prompt', 'x', '--guidance', 'dislike'], msg);
  usageError(['compare', '--preset', 'tiny', '--prompt', 'x', '--guidance', 'like'], msg);
  const r = reno(['score', '--preset', 'tiny', '--prompt', 'x', '--guidance', 'dislike', IMAGE]);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.errors.length, 1, r.stderr);
  assert.match(r.errors[0], msg);
  assert.equal(r.stdout, '', 'nothing scored');
});

test('guidance: dislike from a config file without --user is warned about; the default like is not', () => {
  const d = tmpDir('reno-cli');
  const file = path.join(d, 'c.yaml');
  const logs: string[] = [];
  const log = (l: string) => logs.push(l);
  fs.writeFileSync(file, 'guidance: dislike\n');
  assert.equal(generateConfig({ prompt: 'x', config: file, log }).guidance, 'dislike');
  assert.equal(logs.length, 1);
  assert.match(logs[0], /guidance: dislike \(from .*c\.yaml\) has no effect without --user/);
  fs.writeFileSync(file, 'guidance: like\nsteps: 3\n');
  generateConfig({ prompt: 'x', config: file, log });
  generateConfig({ prompt: 'x', log });
  assert.equal(logs.length, 1, logs.join('\n'));
  // with a user, both are fine and quiet
  generateConfig({ prompt: 'x', user: HISTORY, guidance: 'dislike', log });
  assert.equal(logs.length, 1);
  assert.throws(() => generateConfig({ prompt: 'x', size: '64', overrides: { width: 32 } }), /--size and --width\/--height cannot be used together/);
});

test('config flags reach the run: --n_ref (and numbers given as text) in run.yaml', () => {
  const out = tmpDir('reno-cli');
  const r = reno([
    'generate',
    '--preset',
    'tiny',
    '--backend',
    'wasm',
    '--quiet',
    '--prompt',
    'a red fox',
    '--steps',
    '2',
    '--n_ref',
    '3',
    '--lr',
    '2.5',
    '--weights.imagereward',
    '0',
    '--weights.aesthetic',
    '0',
    '--weights.clip',
    '0',
    '--weights.pickscore',
    '1',
    '--out',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const [dir] = fs.readdirSync(out);
  const run = YAML.parse(fs.readFileSync(path.join(out, dir, 'run.yaml'), 'utf8'));
  assert.equal(run.n_ref, 3);
  assert.equal(run.lr, 2.5);
  assert.equal(run.steps, 2);
  assert.equal(run.weights.pickscore, 1);
  assert.equal(run.weights.clip, 0);
});

test('generate --help lists every config key and every reward weight with a description and its default', () => {
  const r = reno(['generate', '--help']);
  assert.equal(r.code, 0, r.stderr);
  const defaults = YAML.parse(fs.readFileSync(path.join(ROOT, 'configs', 'default.yaml'), 'utf8'));
  // the option lines: "  --flag[, --alias]   description   [type] [default: x]" (descriptions may wrap)
  const entries = new Map<string, string>();
  let current = '';
  for (const line of r.stdout.split('\n')) {
    const m = /^ {2}(--[\w.-]+)(?:, (--[\w.-]+))?(.*)$/.exec(line);
    if (m) {
      current = m[1];
      entries.set(current, m[3]);
      if (m[2]) entries.set(m[2], m[3]);
    } else if (current && /^ {4,}\S/.test(line)) entries.set(current, entries.get(current) + ' ' + line.trim());
  }
  const flags = [
    ...Object.keys(SCHEMA)
      .filter((k) => k !== 'weights')
      .map((k) => ({ flag: `--${k.replace(/_/g, '-')}`, def: defaults[k] })),
    ...REWARDS.map((s) => ({ flag: `--weights.${s.name}`, def: defaults.weights[s.name] ?? 0 })),
  ];
  for (const { flag, def } of flags) {
    const text = entries.get(flag);
    assert.ok(text !== undefined, `${flag} missing from generate --help:\n${r.stdout}`);
    const description = text.replace(/\[[^\]]*\]/g, '').trim();
    assert.ok(description.length > 3, `${flag} has no description: "${text}"`);
    if (flag !== '--prompt') assert.ok(text.includes(`[default: ${def}]`), `${flag}: no "[default: ${def}]" in "${text}"`);
  }
  assert.ok(entries.has('--n_ref'), '--n_ref listed as an alias of --n-ref');
  // every other flag of every command has a description too
  for (const cmd of [
    ['generate'],
    ['compare'],
    ['score'],
    ['sweep'],
    ['preference', 'synth'],
    ['preference', 'train'],
    ['preference', 'eval'],
    ['preference', 'attention'],
    ['preference', 'tsne'],
    ['preference', 'dataset'],
    ['dev', 'parity'],
  ]) {
    const h = reno([...cmd, '--help']).stdout;
    for (const line of h.split('\n')) {
      const m = /^ {2}(--[\w.-]+(?:, --[\w.-]+)?)\s+(.*)$/.exec(line);
      if (m) assert.ok(!m[2].startsWith('['), `${cmd.join(' ')} ${m[1]} has no description: ${line}`);
    }
  }
});
