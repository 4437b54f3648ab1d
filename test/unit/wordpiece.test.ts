import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { IMAGE_REWARD_TEXT, imageRewardTokenizer, WordPieceTokenizer } from '../../src/tokenizers/wordpiece.js';
import { readNpy } from '../../src/weights/npy.js';
import { PARITY, tmpDir } from '../helpers.js';

// The vocabulary of transformers' own BertTokenizer tests (tests/models/bert/test_tokenization_bert.py).
const SMALL = ['[UNK]', '[CLS]', '[SEP]', '[PAD]', '[MASK]', 'want', '##want', '##ed', 'wa', 'un', 'runn', '##ing', ',', 'low', 'lowest'];

function vocabFile(tokens: string[]): string {
  const file = path.join(tmpDir('reno-wordpiece'), 'vocab.txt');
  fs.writeFileSync(file, `${tokens.join('\n')}\n`);
  return file;
}

const small = WordPieceTokenizer.fromVocabFile(vocabFile(SMALL));

test('BertTokenizer reference tokenisation', () => {
  assert.deepEqual(small.tokenizeToStrings('UNwant\u00E9d,running'), ['un', '##want', '##ed', ',', 'runn', '##ing']);
  assert.deepEqual(small.encode('UNwant\u00E9d,running'), [9, 6, 7, 12, 10, 11]);
  assert.deepEqual(small.tokenizeToStrings('unwantedX running'), ['[UNK]', 'runn', '##ing']);
  assert.deepEqual(small.tokenizeToStrings(''), []);
  assert.deepEqual(small.encode('lowest low wants'), [14, 13, 0]);
});

test('BasicTokenizer: lower case, accents, punctuation, whitespace, controls, CJK', () => {
  assert.deepEqual(small.basicTokenize(' \tHeLLo!how  \n Are yoU?  '), ['hello', '!', 'how', 'are', 'you', '?']);
  assert.deepEqual(small.basicTokenize('H\u00E9llo n\u0303o'), ['hello', 'no']);
  assert.deepEqual(small.basicTokenize('ah\u535A\u63A8zz'), ['ah', '\u535A', '\u63A8', 'zz']);
  assert.deepEqual(small.basicTokenize('a\u0000b\u200bc\ufffdd e\u00a0f\u2028g'), ['abcd', 'e', 'f', 'g']);
  assert.deepEqual(small.basicTokenize('“quoted” it’s — $5 ~x'), ['“', 'quoted', '”', 'it', '’', 's', '—', '$', '5', '~', 'x']);
  const cased = WordPieceTokenizer.fromVocabFile(vocabFile(SMALL), { lowercase: false });
  assert.deepEqual(cased.basicTokenize('H\u00E9llo'), ['H\u00E9llo']);
});

test('WordPiece: greedy longest match, whole word [UNK], 100 character limit', () => {
  const tok = WordPieceTokenizer.fromVocabFile(vocabFile([...SMALL, 'a', '##a', '##aa', 'aaa']));
  assert.deepEqual(tok.wordpiece('aaaaaa'), ['aaa', '##aa', '##a']);
  assert.deepEqual(tok.wordpiece('a'.repeat(100)).length > 1, true);
  assert.deepEqual(tok.wordpiece('a'.repeat(101)), ['[UNK]']);
  assert.deepEqual(tok.wordpiece('ab'), ['[UNK]']);
});

test('special tokens in the raw text stay whole; added tokens get the next ids', () => {
  const tok = WordPieceTokenizer.fromVocabFile(vocabFile(SMALL));
  assert.deepEqual(tok.encode('[CLS] want[SEP]low [cls]'), [1, 5, 2, 13, 0, 0, 0]);
  const dec = tok.addSpecialToken('[DEC]');
  const enc = tok.addSpecialToken('[ENC]');
  assert.deepEqual([dec, enc], [SMALL.length, SMALL.length + 1]);
  assert.deepEqual(tok.encode('[ENC]want'), [enc, 5]);
  assert.equal(tok.addSpecialToken('[ENC]'), enc);
});

test('padding to max_length, truncation, attention mask, firstTokenId', () => {
  const out = small.tokenize(['want running', 'low '.repeat(50)], { maxLength: 8 });
  assert.deepEqual(out.shape, [2, 8]);
  assert.deepEqual(Array.from(out.ids.slice(0, 8)), [1, 5, 10, 11, 2, 3, 3, 3]);
  assert.deepEqual(Array.from(out.mask.slice(0, 8)), [1, 1, 1, 1, 1, 0, 0, 0]);
  assert.deepEqual(Array.from(out.ids.slice(8)), [1, 13, 13, 13, 13, 13, 13, 2]);
  assert.deepEqual(Array.from(out.mask.slice(8)), [1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(out.untruncated, [5, 52]);
  const longest = small.tokenize(['want', 'want running'], { maxLength: 35, padding: 'longest' });
  assert.deepEqual(longest.shape, [2, 5]);
  const enc = small.tokenize(['want'], { maxLength: 4, firstTokenId: 99 });
  assert.deepEqual(Array.from(enc.ids), [99, 5, 2, 3]);
  assert.throws(() => small.tokenize(['x'], { maxLength: 1 }), ConfigError);
});

test('ImageReward: [DEC] = 30522 and [ENC] = 30523 on a 30522-entry vocab; ids keep [CLS] = 101', () => {
  // bert-base-uncased layout: [PAD] 0, [unused0..98] 1..99, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103.
  const tokens = Array.from({ length: 30522 }, (_, i) => `w${i}`);
  Object.assign(tokens, { 0: '[PAD]', 100: '[UNK]', 101: '[CLS]', 102: '[SEP]', 103: '[MASK]' });
  const { tokenizer, decTokenId, encTokenId } = imageRewardTokenizer(vocabFile(tokens));
  assert.equal(decTokenId, 30522);
  assert.equal(encTokenId, 30523);
  const out = tokenizer.tokenize(['w2000 w3000'], IMAGE_REWARD_TEXT);
  assert.deepEqual(out.shape, [1, 35]);
  assert.deepEqual(Array.from(out.ids.slice(0, 5)), [101, 2000, 3000, 102, 0]);
});

test('the imagereward fixture ids have the layout tokenize() produces', () => {
  const ref = readNpy(path.join(PARITY, 'imagereward', 'io', 'input_ids.npy'));
  const mask = readNpy(path.join(PARITY, 'imagereward', 'io', 'attention_mask.npy'));
  const [rows, len] = ref.shape;
  // The tiny fixture's vocabulary (128 ids) is random, so words are named after their ids.
  const tokens = Array.from({ length: 128 }, (_, i) => `w${i}`);
  Object.assign(tokens, { 0: '[PAD]', 100: '[UNK]', 101: '[CLS]', 102: '[SEP]', 103: '[MASK]' });
  const tok = WordPieceTokenizer.fromVocabFile(vocabFile(tokens));
  const texts: string[] = [];
  for (let r = 0; r < rows; r++) {
    const row = Array.from(ref.data.slice(r * len, (r + 1) * len));
    texts.push(
      row
        .slice(1, row.indexOf(102))
        .map((id) => `w${id}`)
        .join(' '),
    );
  }
  const out = tok.tokenize(texts, { ...IMAGE_REWARD_TEXT, maxLength: len });
  assert.deepEqual(Array.from(out.ids), Array.from(ref.data));
  assert.deepEqual(Array.from(out.mask), Array.from(mask.data));
});

test('vocab errors name the file', () => {
  const missing = path.join(tmpDir('reno-wordpiece'), 'vocab.txt');
  assert.throws(
    () => WordPieceTokenizer.fromVocabFile(missing),
    (e: Error) => e instanceof ConfigError && e.message.includes(missing),
  );
  const noCls = vocabFile(['[PAD]', '[UNK]', '[SEP]']);
  assert.throws(
    () => WordPieceTokenizer.fromVocabFile(noCls),
    (e: Error) => e instanceof ConfigError && e.message.includes(noCls) && e.message.includes('[CLS]'),
  );
});
