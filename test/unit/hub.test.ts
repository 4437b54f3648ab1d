// Finding models on disk (--model-dir, --models-dir, HF cache), the registry, and `reno models list/verify`.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { modelsList, modelsVerify } from '../../src/commands/models.js';
import { ConfigError, ModelNotFoundError, UsageError } from '../../src/errors.js';
import { getModel, loadRegistry, parseRegistry, withUses } from '../../src/config/models.js';
import { hfCacheDir, locateModel, requireModel, requireModelWithUses } from '../../src/weights/hub.js';
import { ROOT, tmpDir } from '../helpers.js';

const COMMIT = 'a'.repeat(40);
const COMMIT2 = 'b'.repeat(40);

const REG = parseRegistry(
  `models:
  gen:
    repo: org/gen-model
    kind: generator
    description: a generator
    size: 1 kB
    files: [model_index.json, unet/diffusion_pytorch_model.safetensors]
  tok:
    repo: org/tok
    kind: component
    description: a tokenizer
    size: 1 kB
    files: [vocab.json]
  rew:
    repo: org/rew
    kind: reward
    description: a reward
    size: 1 kB
    files: [config.json, model.safetensors, head.pt]
    optional: [extra.json]
    uses: {tokenizer: tok}
`,
  'test-registry.yaml',
);

function write(file: string, data: string | Buffer = '{}'): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
}

/** A tiny valid safetensors file (one F32 tensor of 2 values). */
function safetensors(): Buffer {
  const json = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(8)]);
}

const ZIP = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(16)]);

/** Put files in the HF cache layout: blobs, snapshots/<commit> symlinks, refs/<ref>. */
function cacheRepo(cache: string, repo: string, commit: string, files: Record<string, string | Buffer>, ref: string | null = 'main'): string {
  const root = path.join(cache, `models--${repo.replace('/', '--')}`);
  let i = 0;
  for (const [f, data] of Object.entries(files)) {
    const blob = path.join(root, 'blobs', `blob${commit.slice(0, 4)}${i++}`);
    write(blob, data);
    const target = path.join(root, 'snapshots', commit, f);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.symlinkSync(path.relative(path.dirname(target), blob), target);
  }
  fs.mkdirSync(path.join(root, 'snapshots', commit), { recursive: true });
  if (ref) write(path.join(root, 'refs', ref), commit);
  return path.join(root, 'snapshots', commit);
}

function sink(): { stream: Writable; text: () => string } {
  let s = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      s += String(chunk);
      cb();
    },
  });
  return { stream, text: () => s };
}

test('hfCacheDir: HF_HUB_CACHE, then HF_HOME/hub, then ~/.cache/huggingface/hub', () => {
  assert.equal(hfCacheDir({ HF_HUB_CACHE: '/a/hub', HF_HOME: '/b', HOME: '/h' }), '/a/hub');
  assert.equal(hfCacheDir({ HF_HOME: '/b', HOME: '/h' }), '/b/hub');
  assert.equal(hfCacheDir({ HOME: '/h' }), '/h/.cache/huggingface/hub');
  assert.equal(hfCacheDir({ HF_HOME: '~/hf', HOME: '/h' }), '/h/hf/hub');
});

test('locates a model in --models-dir as DIR/ORG/NAME', () => {
  const d = tmpDir();
  for (const f of ['config.json', 'model.safetensors', 'head.pt']) write(path.join(d, 'org', 'rew', f));
  const loc = locateModel(getModel('rew', REG), { modelsDir: d, env: { HOME: d } });
  assert.deepEqual(loc, { dir: path.join(d, 'org', 'rew'), where: 'models-dir', complete: true, missing: [] });
});

test('locates a model in the HF cache through refs/main, a commit revision, or a lone snapshot', () => {
  const d = tmpDir();
  const env = { HF_HUB_CACHE: path.join(d, 'hub') };
  const snap = cacheRepo(env.HF_HUB_CACHE, 'org/rew', COMMIT, { 'config.json': '{}', 'model.safetensors': 'x', 'head.pt': 'y' });
  const rew = getModel('rew', REG);
  assert.deepEqual(locateModel(rew, { env }), { dir: snap, where: 'hf-cache', revision: COMMIT, complete: true, missing: [] });
  // A second snapshot; refs/main still chooses.
  cacheRepo(env.HF_HUB_CACHE, 'org/rew', COMMIT2, { 'config.json': '{}' }, null);
  assert.equal(locateModel(rew, { env })?.revision, COMMIT);
  // The revision asked for is itself a commit hash: that snapshot, no refs needed.
  const pinned = { ...rew, revision: COMMIT2 };
  const loc2 = locateModel(pinned, { env });
  assert.equal(loc2?.revision, COMMIT2);
  assert.deepEqual(loc2?.missing, ['model.safetensors', 'head.pt']);
  // No refs/main and exactly one snapshot: that one.
  const tokSnap = cacheRepo(env.HF_HUB_CACHE, 'org/tok', COMMIT, { 'vocab.json': '{}' }, null);
  assert.equal(locateModel(getModel('tok', REG), { env })?.dir, tokSnap);
});

test('two snapshots and no refs: not found, and the message says why', () => {
  const d = tmpDir();
  const env = { HF_HUB_CACHE: path.join(d, 'hub') };
  cacheRepo(env.HF_HUB_CACHE, 'org/tok', COMMIT, { 'vocab.json': '{}' }, null);
  cacheRepo(env.HF_HUB_CACHE, 'org/tok', COMMIT2, { 'vocab.json': '{}' }, null);
  assert.equal(locateModel(getModel('tok', REG), { env }), null);
  assert.throws(() => requireModel(getModel('tok', REG), { env }), /no refs\/main and 2 snapshots/);
});

test('a missing model names every path searched and how to get it', () => {
  const d = tmpDir();
  const env = { HF_HUB_CACHE: path.join(d, 'hub') };
  const md = path.join(d, 'models');
  let err: unknown;
  try {
    requireModel(getModel('rew', REG), { modelsDir: md, env });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ModelNotFoundError);
  const msg = (err as Error).message;
  assert.match(msg, /model "rew" \(org\/rew, revision main\) not found/);
  assert.ok(msg.includes(`--models-dir: ${path.join(md, 'org', 'rew')} (no such folder)`), msg);
  assert.ok(msg.includes(`HF cache: ${path.join(env.HF_HUB_CACHE, 'models--org--rew')} (no such folder)`), msg);
  assert.ok(msg.includes('reno models download rew'), msg);
  assert.ok(msg.includes('--preset tiny'), msg);
  assert.ok(msg.includes(`DIR/org/rew/{config.json, model.safetensors, head.pt}`), msg);
  assert.ok(!msg.includes('--model-dir DIR'), 'only the generator is told about --model-dir');
  // The generator: --model-dir is searched alone, and named in the advice.
  const gm = path.join(d, 'nope');
  assert.throws(
    () => requireModel(getModel('gen', REG), { modelDir: gm, env }),
    (e: Error) => e.message.includes(`--model-dir: ${gm} (no such folder)`) && e.message.includes('--model-dir DIR'),
  );
});

test('an incomplete model lists its missing files; a complete copy elsewhere wins', () => {
  const d = tmpDir();
  const env = { HF_HUB_CACHE: path.join(d, 'hub') };
  const md = path.join(d, 'models');
  write(path.join(md, 'org', 'rew', 'config.json'));
  const rew = getModel('rew', REG);
  const loc = locateModel(rew, { modelsDir: md, env });
  assert.equal(loc?.complete, false);
  assert.deepEqual(loc?.missing, ['model.safetensors', 'head.pt']);
  assert.throws(
    () => requireModel(rew, { modelsDir: md, env }),
    (e: Error) => e instanceof ModelNotFoundError && /incomplete at .*missing model\.safetensors, head\.pt/.test(e.message),
  );
  // A dangling snapshot symlink (blob deleted) is missing too.
  const snap = cacheRepo(env.HF_HUB_CACHE, 'org/rew', COMMIT, { 'config.json': '{}', 'model.safetensors': 'x', 'head.pt': 'y' });
  assert.equal(locateModel(rew, { modelsDir: md, env })?.dir, snap);
  fs.unlinkSync(fs.realpathSync(path.join(snap, 'head.pt')));
  const again = locateModel(rew, { modelsDir: md, env });
  assert.equal(again?.where, 'models-dir', 'both incomplete: the first place searched');
  fs.rmSync(path.join(md, 'org'), { recursive: true });
  assert.deepEqual(locateModel(rew, { modelsDir: md, env })?.missing, ['head.pt']);
});

test('--model-dir applies to the generator only', () => {
  const d = tmpDir();
  const env = { HF_HUB_CACHE: path.join(d, 'hub') };
  const gen = path.join(d, 'sd');
  write(path.join(gen, 'model_index.json'));
  write(path.join(gen, 'unet', 'diffusion_pytorch_model.safetensors'), 'x');
  assert.deepEqual(locateModel(getModel('gen', REG), { modelDir: gen, env }), { dir: gen, where: 'model-dir', complete: true, missing: [] });
  assert.equal(locateModel(getModel('tok', REG), { modelDir: gen, env }), null);
});

test('requireModelWithUses finds the model and its tokenizer, or names what is missing', () => {
  const d = tmpDir();
  const md = path.join(d, 'models');
  const env = { HF_HUB_CACHE: path.join(d, 'hub') };
  for (const f of ['config.json', 'model.safetensors', 'head.pt']) write(path.join(md, 'org', 'rew', f));
  assert.throws(
    () => requireModelWithUses(getModel('rew', REG), { modelsDir: md, env }, REG),
    /rew uses "tok" as its tokenizer: model "tok" \(org\/tok/,
  );
  write(path.join(md, 'org', 'tok', 'vocab.json'));
  const r = requireModelWithUses(getModel('rew', REG), { modelsDir: md, env }, REG);
  assert.equal(r.uses.tokenizer.dir, path.join(md, 'org', 'tok'));
  assert.deepEqual(
    withUses(getModel('rew', REG), REG).map((e) => e.name),
    ['rew', 'tok'],
  );
});

test('the registry: validation errors name the key; the package registry loads and its uses resolve', () => {
  const base = 'models:\n  m:\n    repo: a/b\n    kind: reward\n    description: d\n    size: 1 B\n    files: [x]\n';
  assert.throws(
    () => parseRegistry(`${base}    colour: red\n`, 'r.yaml'),
    (e: Error) => e instanceof ConfigError && /r\.yaml: model "m": unknown key "colour"/.test(e.message),
  );
  assert.throws(() => parseRegistry(base.replace('kind: reward', 'kind: other'), 'r.yaml'), /"kind" must be one of/);
  assert.throws(() => parseRegistry(base.replace('repo: a/b', 'repo: ab'), 'r.yaml'), /"repo" must be ORG\/NAME/);
  assert.throws(() => parseRegistry(`${base}    uses: {tokenizer: zz}\n`, 'r.yaml'), /"uses.tokenizer" names unknown model "zz"/);
  assert.throws(() => parseRegistry(base.replace('files: [x]', 'files: [../x]'), 'r.yaml'), /"files" has a bad file path/);
  assert.throws(
    () => getModel('nope', REG),
    (e: Error) => e instanceof UsageError && /known models: gen, tok, rew/.test(e.message),
  );
  const reg = loadRegistry(path.join(ROOT, 'configs', 'models.yaml'));
  for (const name of ['sd-turbo', 'pickscore', 'clip', 'hpsv2', 'aesthetic', 'imagereward', 'smolvlm']) assert.ok(reg.models.has(name), name);
  assert.equal(getModel('sd-turbo', reg).kind, 'generator');
  assert.equal(getModel('pickscore', reg).uses.tokenizer, 'clip-h-tokenizer');
  assert.equal(getModel('clip-h-tokenizer', reg).repo, 'laion/CLIP-ViT-H-14-laion2B-s32B-b79K');
});

test('models list prints where each model is, its revision and what is missing', async () => {
  const d = tmpDir();
  const env = { HF_HUB_CACHE: path.join(d, 'hub') };
  const md = path.join(d, 'models');
  cacheRepo(env.HF_HUB_CACHE, 'org/rew', COMMIT, { 'config.json': '{}', 'model.safetensors': 'x' });
  write(path.join(md, 'org', 'tok', 'vocab.json'));
  const out = sink();
  const rows = await modelsList({ modelsDir: md, env, registry: REG, out: out.stream });
  const by = Object.fromEntries(rows.map((r) => [r.name, r]));
  assert.equal(by.gen.where, null);
  assert.equal(by.tok.where, 'models-dir');
  assert.equal(by.tok.complete, true);
  assert.equal(by.rew.commit, COMMIT);
  assert.deepEqual(by.rew.missing, ['head.pt']);
  const text = out.text();
  assert.match(text, /^NAME\s+KIND\s+REPO/);
  assert.match(text, /rew\s+reward\s+org\/rew.*hf-cache.*aaaaaaaaaaaa\s+missing head\.pt/);
  assert.match(text, /gen\s+generator.*not found/);
  assert.match(text, /reno models download gen rew/);
  const js = sink();
  await modelsList({ modelsDir: md, env, registry: REG, out: js.stream, json: true });
  assert.equal(JSON.parse(js.text()).length, 3);
});

test('models verify parses safetensors headers, checks .pt zips and reports what is wrong', async () => {
  const d = tmpDir();
  const env = { HF_HUB_CACHE: path.join(d, 'hub') };
  const md = path.join(d, 'models');
  write(path.join(md, 'org', 'rew', 'config.json'), '{"a": 1}');
  write(path.join(md, 'org', 'rew', 'model.safetensors'), safetensors());
  write(path.join(md, 'org', 'rew', 'head.pt'), ZIP);
  write(path.join(md, 'org', 'tok', 'vocab.json'), '{}');
  const out = sink();
  let res = await modelsVerify(['rew'], { modelsDir: md, env, registry: REG, out: out.stream });
  assert.deepEqual(
    res.map((r) => [r.name, r.ok]),
    [
      ['rew', true],
      ['tok', true],
    ],
  );
  write(path.join(md, 'org', 'rew', 'model.safetensors'), safetensors().subarray(0, 20));
  write(path.join(md, 'org', 'rew', 'head.pt'), Buffer.from('not a zip file'));
  write(path.join(md, 'org', 'rew', 'extra.json'), '{broken');
  res = await modelsVerify(['rew'], { modelsDir: md, env, registry: REG, out: out.stream });
  const probs = res[0].problems.join('\n');
  assert.equal(res[0].ok, false);
  assert.match(probs, /model\.safetensors.*(truncated|runs past)/);
  assert.match(probs, /head\.pt: not a zip archive/);
  assert.match(probs, /extra\.json: /);
  assert.match(out.text(), /FAIL  rew/);
  res = await modelsVerify(['gen'], { modelsDir: md, env, registry: REG, out: out.stream });
  assert.match(res[0].problems[0], /not found; searched .*reno models download gen/);
});
