// BERT's uncased WordPiece tokenizer, as used by ImageReward's BLIP text encoder (bert-base-uncased vocab.txt).
// Ports transformers' slow BertTokenizer (models/bert/tokenization_bert.py): BasicTokenizer (_clean_text,
// _tokenize_chinese_chars, NFC, lower + _run_strip_accents, _run_split_on_punc), WordpieceTokenizer (greedy
// longest-match-first with "##", words over 100 characters -> [UNK]), special tokens split out of the raw text
// first (the added-tokens trie of PreTrainedTokenizer.tokenize), and `tokenizer(text, padding='max_length',
// truncation=True, max_length=35)` = [CLS] ids[:max_length-2] [SEP] [PAD]...
import * as fs from 'node:fs';
import { ConfigError } from '../errors.js';
import type { TokenBatch } from './clip-bpe.js';
import { reportTruncation } from './truncation.js';

export interface WordPieceOptions {
  /** Lower-case and strip accents (bert-base-uncased: true). */
  lowercase?: boolean;
  /** Split CJK ideographs into single characters (default true). */
  tokenizeChineseChars?: boolean;
  /** Longer words become [UNK] (default 100). */
  maxInputCharsPerWord?: number;
}

export interface WordPieceCallOptions {
  /** Sequence length including [CLS] and [SEP] (ImageReward: 35). */
  maxLength: number;
  /** 'max_length' pads every row to maxLength (ImageReward); 'longest' pads to the longest row of the batch. */
  padding?: 'max_length' | 'longest';
  /** Id written at position 0 instead of [CLS]. ImageReward keeps [CLS] (see `imageRewardTokenizer`); BLIP's
   * image-text matching head would pass `encTokenId` here. */
  firstTokenId?: number;
}

/** Python's str.isspace, used by whitespace_tokenize (str.split()). */
const PY_SPACE_RUN = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** _is_punctuation: ASCII non-alphanumeric printable characters and every Unicode P* category. */
function isPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  const ascii = (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
  return ascii || /^\p{P}$/u.test(ch);
}

function splitWords(text: string): string[] {
  return text.split(PY_SPACE_RUN).filter((w) => w.length > 0);
}

export class WordPieceTokenizer {
  readonly vocab: Map<string, number>;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  private readonly lowercase: boolean;
  private readonly chinese: boolean;
  private readonly maxChars: number;
  /** Special tokens matched verbatim in the raw text (never split or lower-cased). */
  private readonly specials = new Set<string>(['[UNK]', '[SEP]', '[PAD]', '[CLS]', '[MASK]']);

  constructor(vocab: Map<string, number>, opts: WordPieceOptions = {}, source = '<vocab>') {
    this.vocab = vocab;
    this.lowercase = opts.lowercase ?? true;
    this.chinese = opts.tokenizeChineseChars ?? true;
    this.maxChars = opts.maxInputCharsPerWord ?? 100;
    const need = (t: string): number => {
      const id = vocab.get(t);
      if (id === undefined) throw new ConfigError(`${source}: the vocabulary has no ${t} token`);
      return id;
    };
    this.unkId = need('[UNK]');
    this.clsId = need('[CLS]');
    this.sepId = need('[SEP]');
    this.padId = need('[PAD]');
  }

  /** From a BERT vocab.txt: one token per line, id = line number (load_vocab). */
  static fromVocabFile(file: string, opts?: WordPieceOptions): WordPieceTokenizer {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read ${file}: ${(e as Error).message}`);
    }
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return new WordPieceTokenizer(new Map(lines.map((t, i) => [t.replace(/\r$/, ''), i])), opts, file);
  }

  /** add_special_tokens: a token not in the vocab gets the next id (len(tokenizer)); returns its id. */
  addSpecialToken(token: string): number {
    let id = this.vocab.get(token);
    if (id === undefined) {
      id = this.vocab.size;
      this.vocab.set(token, id);
    }
    this.specials.add(token);
    return id;
  }

  /** BasicTokenizer.tokenize for text without special tokens. */
  basicTokenize(text: string): string[] {
    let clean = '';
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      if (cp === 0 || cp === 0xfffd) continue;
      if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || /^\p{Zs}$/u.test(ch)) clean += ' ';
      else if (/^[\p{Cc}\p{Cf}]$/u.test(ch)) continue;
      else if (this.chinese && isCjk(cp)) clean += ` ${ch} `;
      else clean += ch;
    }
    const out: string[] = [];
    for (let word of splitWords(clean.normalize('NFC'))) {
      if (this.lowercase)
        word = word
          .toLowerCase()
          .normalize('NFD')
          .replace(/\p{Mn}/gu, '');
      let cur = '';
      for (const ch of word) {
        if (isPunctuation(ch)) {
          if (cur) out.push(cur);
          out.push(ch);
          cur = '';
        } else cur += ch;
      }
      if (cur) out.push(cur);
    }
    return out.flatMap(splitWords);
  }

  /** WordpieceTokenizer.tokenize for one basic token. */
  wordpiece(word: string): string[] {
    const chars = Array.from(word);
    if (chars.length > this.maxChars) return ['[UNK]'];
    const out: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let cur: string | undefined;
      while (start < end) {
        const sub = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        if (this.vocab.has(sub)) {
          cur = sub;
          break;
        }
        end--;
      }
      if (cur === undefined) return ['[UNK]'];
      out.push(cur);
      start = end;
    }
    return out;
  }

  /** The token strings of a text (no [CLS]/[SEP]), special tokens kept whole. */
  tokenizeToStrings(text: string): string[] {
    const keys = [...this.specials].sort((a, b) => b.length - a.length);
    const pieces = text.split(new RegExp(`(${keys.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`));
    return pieces.flatMap((p, k) => (k % 2 === 1 ? [p] : this.basicTokenize(p).flatMap((w) => this.wordpiece(w))));
  }

  /** Token ids of a text without [CLS]/[SEP]. */
  encode(text: string): number[] {
    return this.tokenizeToStrings(text).map((t) => this.vocab.get(t) ?? this.unkId);
  }

  /** `tokenizer(texts, padding=..., truncation=True, max_length=...)`: ids + attention mask. */
  tokenize(texts: readonly string[], opts: WordPieceCallOptions): TokenBatch {
    const max = opts.maxLength;
    if (!Number.isInteger(max) || max < 2) throw new ConfigError(`max_length must be an integer >= 2, got ${max}`);
    const rows = texts.map((t) => {
      const ids = this.encode(t);
      if (ids.length + 2 > max) reportTruncation({ tokenizer: 'BERT', limit: max, tokens: ids.length + 2 });
      return { seq: [opts.firstTokenId ?? this.clsId, ...ids.slice(0, max - 2), this.sepId], full: ids.length + 2 };
    });
    const len = opts.padding === 'longest' ? Math.max(0, ...rows.map((r) => r.seq.length)) : max;
    const ids = new Int32Array(texts.length * len).fill(this.padId);
    const mask = new Int32Array(texts.length * len);
    rows.forEach((r, i) => {
      ids.set(r.seq, i * len);
      mask.fill(1, i * len, i * len + r.seq.length);
    });
    return { ids, mask, shape: [texts.length, len], untruncated: rows.map((r) => r.full) };
  }
}

/** ImageReward's text tokenizer (ImageReward/models/BLIP/blip.py init_tokenizer): bert-base-uncased plus the
 * special tokens '[DEC]' (bos, id 30522 with the 30522-entry vocab) and '[ENC]' (id 30523), giving the med-BERT
 * vocab size 30524. `encTokenId` is what BLIP's image-text matching substitutes for [CLS]; ImageReward.score /
 * score_gard do not substitute it (they feed the BertTokenizer ids, [CLS] = 101, unchanged), so call
 * `tokenize(prompts, IMAGE_REWARD_TEXT)` and leave `firstTokenId` unset to match ImageReward. */
export function imageRewardTokenizer(vocabFile: string): {
  tokenizer: WordPieceTokenizer;
  decTokenId: number;
  encTokenId: number;
} {
  const tokenizer = WordPieceTokenizer.fromVocabFile(vocabFile);
  const decTokenId = tokenizer.addSpecialToken('[DEC]');
  const encTokenId = tokenizer.addSpecialToken('[ENC]');
  return { tokenizer, decTokenId, encTokenId };
}

/** ImageReward.py:110,141: `tokenizer(prompt, padding='max_length', truncation=True, max_length=35)`. */
export const IMAGE_REWARD_TEXT: WordPieceCallOptions = { maxLength: 35, padding: 'max_length' };
