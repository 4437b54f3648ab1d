// The preference model's token layout (where prototypes, images, prompts and labels sit), the prefix cache (cached
// == uncached scores, and gradients), the ablation layouts (no prompt = ViPer's template, 0 prototypes), and
// checkpoint round trips, on the tiny SmolVLM backbone of the preset.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadPreferenceModel, saveCheckpoint } from '../../src/preference/checkpoint.js';
import { DEFAULT_TEMPLATE, SequenceLayout } from '../../src/preference/sequence.js';
import { DEFAULT_PREFERENCE_CONFIG, PreferenceModel, type PreferenceConfig, type RefPixels } from '../../src/preference/model.js';
import { ConfigError, WeightsError } from '../../src/errors.js';
import { IDEFICS3_TOKENS, Idefics3Tokenizer, imagePromptString } from '../../src/models/idefics3/tokenizer.js';
import { gaussian } from '../../src/optimize/noise.js';
import { ROOT, backend, maxRelErr, noLeak, tmpDir } from '../helpers.js';

const BACKBONE = path.join(ROOT, 'presets', 'tiny', 'HuggingFaceTB', 'SmolVLM-256M-Instruct');
const S = 16; // image tokens of the tiny backbone

function image(seed: number): tf.Tensor4D {
  const g = gaussian(64 * 64 * 3, `img:${seed}`);
  return tf.tensor4d(
    g.map((x) => 0.5 + 0.2 * x),
    [1, 64, 64, 3],
  );
}

function refs(m: PreferenceModel, n: number): RefPixels[] {
  return Array.from({ length: n }, (_, i) => {
    const [a, b] = [image(2 * i), image(2 * i + 1)];
    const r = { prompt: `pair ${i}`, liked: m.pixels(a), disliked: m.pixels(b) };
    tf.dispose([a, b]);
    return r;
  });
}

function model(c: Partial<PreferenceConfig> = {}, trainable = false): PreferenceModel {
  const m = PreferenceModel.create(BACKBONE, { ...DEFAULT_PREFERENCE_CONFIG, nRef: 2, ...c }, { seed: 3, trainable });
  // give the adapters a non-zero B so they change the output
  for (const a of m.adapters) {
    const b = tf.tensor2d(
      gaussian(a.b.size, `b:${a.key}`).map((x) => 0.2 * x),
      a.b.shape as [number, number],
    );
    if (a.b instanceof tf.Variable) {
      a.b.assign(b);
      b.dispose();
    } else {
      a.b.dispose();
      a.b = b;
    }
  }
  return m;
}

test('token layout: BOS, then per entry User: <IMG> The prompt is <prompt>. Score ... Assistant: +|-, target without label', async () => {
  await backend('cpu');
  const tok = Idefics3Tokenizer.load(BACKBONE);
  const lay = new SequenceLayout(tok, DEFAULT_TEMPLATE, S);
  const img = tok.tokenId(IDEFICS3_TOKENS.image);
  const h = lay.history([
    { prompt: 'a red circle', label: 'like' },
    { prompt: 'a red circle', label: 'dislike' },
  ]);
  const t = lay.target('two stars');
  // the pieces tokenized separately equal the tokenization of the whole string
  const entry = (p: string, l: string) =>
    `User:${imagePromptString(S)}The prompt is ${p}. Score for this image?<end_of_utterance>\nAssistant: ${l}<end_of_utterance>\n`;
  const enc = (s: string) => tok.encode(s, { addSpecialTokens: false });
  assert.deepEqual(h.ids, enc('<|im_start|>' + entry('a red circle', '+') + entry('a red circle', '-')));
  assert.deepEqual(t.ids, enc(`User:${imagePromptString(S)}The prompt is two stars. Score for this image?<end_of_utterance>\nAssistant:`));
  assert.equal(h.ids[0], tok.tokenId('<|im_start|>'));
  // images: S consecutive <image> tokens from each start, and no others
  assert.equal(h.imageStarts.length, 2);
  for (const s of h.imageStarts) assert.deepEqual(h.ids.slice(s, s + S), new Array(S).fill(img));
  assert.equal(h.ids.filter((x) => x === img).length, 2 * S);
  // labels: " +" then " -", each followed by <end_of_utterance> "\n"; the target ends with "Assistant:"
  assert.deepEqual(
    h.labelPositions.map((p) => h.ids[p]),
    [lay.labelIds.like, lay.labelIds.dislike],
  );
  assert.deepEqual(lay.labelIds, { like: tok.tokenId('Ġ+'), dislike: tok.tokenId('Ġ-') });
  for (const p of h.labelPositions) assert.equal(h.ids[p + 1], tok.tokenId(IDEFICS3_TOKENS.endOfUtterance));
  assert.deepEqual(t.ids.slice(-2), enc('Assistant:'));
  assert.deepEqual(t.labelPositions, []);
  // full = history + target, image starts shifted
  const f = lay.full([{ prompt: 'x', label: 'like' }], 'y');
  const hh = lay.history([{ prompt: 'x', label: 'like' }]);
  assert.equal(f.imageStarts[1], hh.ids.length + lay.target('y').imageStarts[0]);
  // prompts are cut to 100 tokens
  const long = Array.from({ length: 300 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
  assert.equal(lay.promptIds(long).length, 100);
  assert.equal(lay.target(long).ids.length, t.ids.length - lay.promptIds('two stars').length + 100);
});

test("no-prompt layout is ViPer's template; an empty prompt uses it too; bad templates are refused", async () => {
  await backend('cpu');
  const tok = Idefics3Tokenizer.load(BACKBONE);
  const enc = (s: string) => tok.encode(s, { addSpecialTokens: false });
  const viper = (l: string) => `User:${imagePromptString(S)}Score for this image?<end_of_utterance>\nAssistant: ${l}<end_of_utterance>\n`;
  const noPrompt = new SequenceLayout(tok, DEFAULT_TEMPLATE, S, false);
  const h = noPrompt.history([
    { prompt: 'ignored', label: 'dislike' },
    { prompt: 'ignored', label: 'like' },
  ]);
  assert.deepEqual(h.ids, enc('<|im_start|>' + viper('-') + viper('+')));
  const withPrompt = new SequenceLayout(tok, DEFAULT_TEMPLATE, S, true);
  assert.deepEqual(withPrompt.target('  ').ids, noPrompt.target('anything').ids);
  assert.throws(() => new SequenceLayout(tok, { ...DEFAULT_TEMPLATE, entry: 'User:<image>{label}' }, S), ConfigError);
  assert.throws(() => new SequenceLayout(tok, { ...DEFAULT_TEMPLATE, like: 'plus' }, S), /one token/);
});

test('prototypes sit before the BOS: the cache holds Lp + history positions; cached and uncached scores are equal', async () => {
  await backend('cpu');
  const m = model();
  const r = refs(m, 2);
  const cand = [image(10), image(11)];
  const px = tf.concat(
    cand.map((c) => m.pixels(c)),
    0,
  ) as tf.Tensor4D;
  const cache = m.encodeReferences(r);
  const hist = m.references(r);
  assert.equal(cache.length, 10 + hist.seq.ids.length);
  hist.pixels?.dispose();
  const cached = m.scoreTargets(cache, 'two stars', px).dataSync();
  for (let i = 0; i < 2; i++) {
    const uncached = tf.tidy(() => {
      const rows = tf.concat(
        r.flatMap((x) => [x.liked, x.disliked]),
        0,
      ) as tf.Tensor4D;
      return m
        .fullLogitDiff(
          r.flatMap((x) => [
            { prompt: x.prompt, label: 'like' as const },
            { prompt: x.prompt, label: 'dislike' as const },
          ]),
          'two stars',
          m.imageHidden(rows),
          m.imageHidden(tf.slice(px, [i, 0, 0, 0], [1, -1, -1, -1])),
        )
        .dataSync()[0];
    });
    assert.ok(
      Math.abs(cached[i] - uncached) <= 1e-4 * Math.max(1, Math.abs(uncached)),
      `candidate ${i}: cached ${cached[i]} vs uncached ${uncached}`,
    );
  }
  // the prototypes are attended to: changing them changes the score
  const before = m.scoreTargets(cache, 'two stars', px).dataSync()[0];
  cache.dispose();
  const old = m.prototypes!;
  m.prototypes = tf.mul(old, 3) as tf.Tensor2D;
  old.dispose();
  const cache2 = m.encodeReferences(r);
  const after = m.scoreTargets(cache2, 'two stars', px).dataSync()[0];
  assert.ok(Math.abs(after - before) > 1e-4, `prototypes have no effect: ${before} vs ${after}`);
  // scoring leaks nothing
  await noLeak(() => tf.dispose(m.scoreTargets(cache2, 'a circle', px)));
  await noLeak(() => m.encodeReferences(r).dispose());
  cache2.dispose();
  tf.dispose([px, ...cand, ...r.flatMap((x) => [x.liked, x.disliked])]);
  m.dispose();
});

test('gradients through the cache: prototypes and LoRA get the same gradient cached and uncached', async () => {
  await backend('cpu');
  const m = model({}, true);
  const r = refs(m, 1);
  const c = image(20);
  const px = m.pixels(c);
  const entries = [
    { prompt: r[0].prompt, label: 'like' as const },
    { prompt: r[0].prompt, label: 'dislike' as const },
  ];
  const vars = [m.prototypes as unknown as tf.Variable, m.adapters[0].b as unknown as tf.Variable];
  const viaCache = tf.variableGrads(() => tf.sum(m.scoreTargets(m.encodeReferences(r), 'a star', px)) as tf.Scalar, vars);
  const whole = tf.variableGrads(() => {
    const rows = tf.concat([r[0].liked, r[0].disliked], 0) as tf.Tensor4D;
    return tf.sum(m.fullLogitDiff(entries, 'a star', m.imageHidden(rows), m.imageHidden(px))) as tf.Scalar;
  }, vars);
  for (const v of vars) {
    const e = maxRelErr(viaCache.grads[v.name].dataSync(), whole.grads[v.name].dataSync());
    assert.ok(e < 1e-4, `${v.name}: rel err ${e}`);
    assert.ok(tf.tidy(() => tf.norm(whole.grads[v.name]).dataSync()[0]) > 0);
  }
  tf.dispose([viaCache.value, whole.value, ...Object.values(viaCache.grads), ...Object.values(whole.grads), px, c, r[0].liked, r[0].disliked]);
  m.dispose();
});

test('0 prototypes and no LoRA run; a checkpoint saves and loads the trained tensors (with the vision tower)', async () => {
  await backend('cpu');
  const bare = PreferenceModel.create(BACKBONE, { ...DEFAULT_PREFERENCE_CONFIG, prototypes: 0, lora: null, nRef: 1 });
  assert.equal(bare.prototypes, null);
  const r = refs(bare, 1);
  const cache = bare.encodeReferences(r);
  assert.equal(cache.length, bare.references(r).seq.ids.length);
  cache.dispose();
  tf.dispose(r.flatMap((x) => [x.liked, x.disliked]));
  bare.dispose();

  const m = model({ trainVision: true }, true);
  const dir = tmpDir('reno-pref-ckpt');
  await saveCheckpoint(dir, m, { training: { note: 'test' }, state: { stage: 1, step: 3 } });
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.format, 'reno-preference');
  assert.equal(cfg.prototypes, 10);
  assert.deepEqual(cfg.lora, { rank: 8, alpha: 8, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] });
  assert.match(cfg.template.entry, /The prompt is \{prompt\}\. Score for this image\?/);
  assert.equal(cfg.training.step, 3);
  const back = loadPreferenceModel(dir, { backboneDir: BACKBONE });
  const a = m.trainedTensors();
  const b = back.trainedTensors();
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  assert.ok([...a.keys()].some((k) => k.startsWith('model.vision_model.')) && a.has('model.text_model.layers.1.self_attn.o_proj.lora_B.weight'));
  for (const [k, t] of a) assert.ok(maxRelErr(b.get(k)!.dataSync(), t.dataSync()) === 0, k);
  // a checkpoint on a backbone of another size is refused, naming the key
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, prototypes: 4 }));
  assert.throws(
    () => loadPreferenceModel(dir, { backboneDir: BACKBONE }),
    (e: Error) => e instanceof WeightsError && /prototypes: expected \[4,32\], found \[10,32\]/.test(e.message),
  );
  back.dispose();
  m.dispose();
});

test('--train-text: the language model (layers, final norm, lm_head; not the token embeddings) is trained, saved and loaded', async () => {
  await backend('cpu');
  const m = model({ trainText: true, lora: null, prototypes: 2 }, true);
  const keys = [...m.trainedTensors().keys()];
  assert.ok(keys.includes('lm_head.weight') && keys.includes('model.text_model.norm.weight'), keys.join());
  assert.ok(keys.includes('model.text_model.layers.1.mlp.down_proj.weight'));
  assert.ok(!keys.some((k) => k.includes('embed_tokens') || k.startsWith('model.vision_model.') || k.includes('lora_')));
  // the trained tensors get gradients through the history cache and the target
  const r = refs(m, 2);
  const px = tf.zeros([1, 64, 64, 3]) as tf.Tensor4D;
  const vars = [...m.trainedTensors().values()] as tf.Variable[];
  const g = tf.variableGrads(() => {
    const cache = m.encodeReferences(r);
    return tf.sum(m.scoreTargets(cache, 'a star', px)) as tf.Scalar;
  }, vars);
  const k = vars.find((v) => v === m.trainedTensors().get('model.text_model.layers.0.self_attn.k_proj.weight'))!;
  assert.ok(tf.tidy(() => tf.norm(g.grads[k.name]).dataSync()[0]) > 0, 'layer 0 keys get a gradient');
  tf.dispose([g.value, ...Object.values(g.grads), px, ...r.flatMap((x) => [x.liked, x.disliked])]);
  const dir = tmpDir('reno-pref-ckpt-text');
  await saveCheckpoint(dir, m, { training: { note: 'test' }, state: { stage: 1, step: 1 } });
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.train_text, true);
  assert.equal(cfg.lora, null);
  const back = loadPreferenceModel(dir, { backboneDir: BACKBONE });
  const a = m.trainedTensors();
  const b = back.trainedTensors();
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [key, t] of a) assert.ok(maxRelErr(b.get(key)!.dataSync(), t.dataSync()) === 0, key);
  // the loaded model scores as the saved one
  const x = tf.randomUniform([1, 64, 64, 3]) as tf.Tensor4D;
  const score = (mm: PreferenceModel) => {
    const cache = mm.encodeReferences([]);
    const s = mm.scoreTargets(cache, 'a star', mm.pixels(x)).dataSync()[0];
    cache.dispose();
    return s;
  };
  assert.equal(score(back), score(m));
  x.dispose();
  back.dispose();
  m.dispose();
});
