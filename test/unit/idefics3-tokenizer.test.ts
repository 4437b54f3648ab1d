// The SmolVLM tokenizer (tokenizer.json through @huggingface/tokenizers) on a hand-written byte-level BPE in the
// SmolLM2 format, the Idefics3 image-token expansion, and the tiny SmolVLM folder writer. The real SmolVLM
// tokenizer.json is not available offline; what is checked here is the format: added special tokens split out
// whole, Digits (one per digit) then ByteLevel pre-tokenisation, merges applied by rank, both merge spellings,
// bytes of any UTF-8 text, decode(encode(x)) == x.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DataError, ModelNotFoundError } from '../../src/errors.js';
import { getModel } from '../../src/config/models.js';
import { loadIdefics3 } from '../../src/models/idefics3/model.js';
import { Idefics3Tokenizer, bytesToUnicode, expandImageTokens, imagePromptString } from '../../src/models/idefics3/tokenizer.js';
import { tinySmolVlmTokenizerJson, writeTinySmolVlm } from '../../scripts/tiny/smolvlm.js';
import { backend, tmpDir } from '../helpers.js';

// ids: 0-2 specials, 3..258 the byte symbols (byte b -> 3 + b), 259.. merges, then the added image tokens
const BYTE = (b: number) => 3 + b;
const MERGES: [string, string][] = [
  ['l', 'o'], // 259 lo
  ['lo', 'w'], // 260 low
  ['e', 'r'], // 261 er
  ['Ġ', 'low'], // 262 Ġlow
  ['low', 'er'], // 263 lower
  ['Ġ', '+'], // 264 Ġ+
];
const ADDED = ['<fake_token_around_image>', '<image>', '<end_of_utterance>', '<global-img>']; // 265..268

function handTokenizer(mergeForm: 'string' | 'pair'): Record<string, unknown> {
  const vocab: Record<string, number> = { '<|endoftext|>': 0, '<|im_start|>': 1, '<|im_end|>': 2 };
  bytesToUnicode().forEach((s, b) => (vocab[s] = BYTE(b)));
  MERGES.forEach(([a, b], i) => (vocab[a + b] = 259 + i));
  ADDED.forEach((t, i) => (vocab[t] = 265 + i));
  const added = Object.entries(vocab)
    .filter(([t]) => t.startsWith('<') && t.length > 1)
    .map(([content, id]) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  return {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Digits', individual_digits: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: mergeForm === 'string' ? MERGES.map(([a, b]) => `${a} ${b}`) : MERGES,
    },
  };
}

const ch = (s: string) => BYTE(s.charCodeAt(0));

test('byte-level BPE: merges by rank, special tokens whole, digits one by one, UTF-8 bytes, both merge spellings', () => {
  for (const form of ['string', 'pair'] as const) {
    const t = new Idefics3Tokenizer(handTokenizer(form));
    // "lower" -> lo, low, er, then low+er: one token; " lower" -> Ġlow + er (Ġlow has a better rank than low+er)
    assert.deepEqual(t.encode('lower'), [263]);
    assert.deepEqual(t.encode(' lower'), [262, 261]);
    assert.deepEqual(t.tokens(' lower'), ['Ġlow', 'er']);
    // special tokens are never split, text around them is ("User" takes the e+r merge)
    assert.deepEqual(t.encode('User:<image>x<end_of_utterance>\n'), [ch('U'), ch('s'), 261, ch(':'), 266, ch('x'), 267, BYTE(10)]);
    // digits are split individually; a space before them stays its own symbol
    assert.deepEqual(t.encode('a 12'), [ch('a'), BYTE(32), ch('1'), ch('2')]);
    // non-ASCII: UTF-8 bytes (é = C3 A9)
    assert.deepEqual(t.encode('é'), [BYTE(0xc3), BYTE(0xa9)]);
    assert.deepEqual(t.encode('Assistant: +'), [...'Assistant:'].map(ch).concat([264]));
    for (const s of ['Score for this image?<end_of_utterance>\nAssistant: -', 'naïve café 123 ✓\n\n  x', ' lower lowest'])
      assert.equal(t.decode(t.encode(s)), s);
    assert.equal(t.tokenId('<global-img>'), 268);
    assert.equal(t.lastTokenId(' +'), 264);
    assert.throws(() => t.tokenId('<row_1_col_1>'), DataError);
    assert.equal(t.size, 269);
  }
});

test('image tokens expand like Idefics3Processor for one unsplit image', () => {
  assert.equal(imagePromptString(3), '<fake_token_around_image><global-img><image><image><image><fake_token_around_image>');
  const t = new Idefics3Tokenizer(handTokenizer('string'));
  const ids = t.encode(expandImageTokens('User:<image>x', 2));
  assert.deepEqual(ids, [ch('U'), ch('s'), 261, ch(':'), 265, 268, 266, 266, 265, ch('x')]);
});

test('load: tokenizer.json (+ tokenizer_config.json) from a folder; a missing file or a non-BPE model is an error', () => {
  const dir = tmpDir('reno-idefics3-tok');
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(handTokenizer('string')));
  assert.deepEqual(Idefics3Tokenizer.load(dir).encode('lower'), [263]);
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|im_start|>', eos_token: '<end_of_utterance>' }));
  assert.deepEqual(Idefics3Tokenizer.load(dir).encode('lower'), [263]);
  assert.throws(() => Idefics3Tokenizer.load(path.join(dir, 'nope')), ModelNotFoundError);
  assert.throws(() => new Idefics3Tokenizer({ model: { type: 'WordPiece' } }), DataError);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('tiny SmolVLM folder: every file the smolvlm registry entry requires; tokenizer and model agree; the ViPer prompt runs', async () => {
  await backend('cpu');
  const root = tmpDir('reno-tiny-smolvlm');
  const dir = writeTinySmolVlm(root);
  const entry = getModel('smolvlm');
  assert.equal(path.relative(root, dir).split(path.sep).join('/'), entry.repo);
  for (const f of entry.files) assert.ok(fs.existsSync(path.join(dir, f)), `missing ${f}`);
  const tok = Idefics3Tokenizer.load(dir);
  const { size } = tinySmolVlmTokenizerJson();
  assert.equal(tok.size, size);
  for (const w of ['User', 'Assistant', 'Score', ' for', ' this', ' image', ' +', ' -']) assert.equal(tok.encode(w).length, 1, `"${w}" is one token`);
  const m = loadIdefics3(dir);
  assert.equal(m.config.imageTokenId, tok.tokenId('<image>'));
  assert.equal(m.config.vision.imageSize, 64);
  const prompt =
    'User:<image>Score for this image?<end_of_utterance>\nAssistant: -<end_of_utterance>\nUser:<image>Score for this image?<end_of_utterance>\nAssistant: ';
  const ids = tok.encode(expandImageTokens(prompt, m.config.imageSeqLen));
  const idsT = tf.tensor2d(ids, [1, ids.length], 'int32');
  const px = tf.randomUniform([1, 2, 64, 64, 3], -1, 1, 'float32', 4) as tf.Tensor5D;
  const e = m.inputsEmbeds(idsT, px);
  const { hidden } = m.forwardEmbeds(e);
  const s = m.logitDiffAt(hidden, [ids.length - 1], tok.lastTokenId(' +'), tok.lastTokenId(' -'));
  assert.ok(Number.isFinite(s.dataSync()[0]));
  tf.dispose([idsT, px, e, hidden, s]);
  m.dispose();
  fs.rmSync(root, { recursive: true, force: true });
});
