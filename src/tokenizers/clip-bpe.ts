// CLIP's byte-level BPE tokenizer, in the three flavours the project needs ids from:
// - clean 'hf': transformers CLIPTokenizer as built by transformers 5.x (and CLIPTokenizerFast in 4.x) from
//   vocab.json + merges.txt: special tokens split out of the raw text first, then per piece NFC, per-character
//   lower-casing, CLIP's split regex, byte-level BPE (tokenizers' CLIPConverter pipeline; no ftfy, no html).
// - clean 'hf_slow': the 4.x slow CLIPTokenizer with ftfy installed (tokenization_clip.py CLIPTokenizer._tokenize):
//   special tokens split out, then ftfy.fix_text, whitespace_clean, lower.
// - clean 'open_clip': open_clip.tokenize (open_clip/tokenizer.py SimpleTokenizer.__call__/encode): basic_clean
//   (ftfy.fix_text, html.unescape twice), whitespace_clean, lower; `<start_of_text>`/`<end_of_text>` are the
//   literal special tokens.
// The BPE itself ports SimpleTokenizer.bpe (openai/CLIP simple_tokenizer.py), identical to tokenizers' BPE
// with end_of_word_suffix "</w>".
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ConfigError } from '../errors.js';
import { fixText, PY_WS } from './ftfy.js';
import { htmlUnescape } from './html.js';
import { reportTruncation } from './truncation.js';

/** Pad id: 'bang' = transformers with pad_token "!" (SD 2.x / SD-Turbo; id of "!" = 0, and a literal "!" in the
 * prompt becomes that added token in the hf cleans), 'eos' = transformers' default (pad with <|endoftext|>),
 * 'zero' = 0 (open_clip.tokenize, OpenAI clip.tokenize). */
export type ClipPad = 'bang' | 'eos' | 'zero';
export type ClipClean = 'hf' | 'hf_slow' | 'open_clip';

export interface ClipTokenizeOptions {
  pad: ClipPad;
  clean: ClipClean;
  /** Context length (default 77): sequences are [bos, bpe..., eos] cut to `length` with eos kept last. */
  length?: number;
}

export interface TokenBatch {
  /** [n, len] row-major token ids. */
  ids: Int32Array;
  /** 1 for bos, prompt tokens and eos; 0 for padding (transformers' attention_mask). */
  mask: Int32Array;
  shape: [number, number];
  /** Per prompt: length of [bos, bpe..., eos] before truncation (open_clip_untruncated_length). */
  untruncated: number[];
}

/** The three reference configurations. */
export const CLIP_MODES = {
  /** SD-Turbo / SD 2.x text encoder (diffusers pipeline, pad_token "!"). */
  sdTurbo: { pad: 'bang', clean: 'hf' },
  /** transformers CLIPTokenizer defaults (PickScore, HF CLIP). */
  hfDefault: { pad: 'eos', clean: 'hf' },
  /** open_clip.tokenize (HPSv2). */
  openClip: { pad: 'zero', clean: 'open_clip' },
} as const satisfies Record<string, ClipTokenizeOptions>;

export const CONTEXT_LENGTH = 77;
const HF_BOS = '<|startoftext|>';
const HF_EOS = '<|endoftext|>';
const OPEN_CLIP_SPECIALS = ['<start_of_text>', '<end_of_text>'];

/** bytes_to_unicode (simple_tokenizer.py): byte -> printable character. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
}
/** The byte characters in vocabulary order (the order of bs above). */
function byteVocabOrder(): string[] {
  const enc = bytesToUnicode();
  return enc.slice().sort((x, y) => x.codePointAt(0)! - y.codePointAt(0)!);
}

// Python/onig whitespace (the Unicode White_Space property); Python's str.split also counts \x1c-\x1f (PY_WS).
const UNI_WS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WORDS = `'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${UNI_WS}\\p{L}\\p{N}]+`;
const HF_SPLIT = new RegExp(WORDS, 'gu');
// open_clip compiles its pattern with IGNORECASE; the special tokens come first.
const OPEN_CLIP_SPLIT = new RegExp(`${OPEN_CLIP_SPECIALS.join('|')}|${WORDS}`, 'giu');
// transformers' slow CLIPTokenizer pattern: its own special tokens first, IGNORECASE.
const HF_SLOW_SPLIT = new RegExp(`${escapeRe(HF_BOS)}|${escapeRe(HF_EOS)}|${WORDS}`, 'giu');
const PY_WS_RUN = new RegExp(`[${PY_WS}]+`, 'gu');

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Python's `" ".join(text.split())` (open_clip whitespace_clean) and `re.sub(r"\s+", " ", t).strip()` (HF slow). */
function whitespaceClean(text: string): string {
  return text.replace(PY_WS_RUN, ' ').replace(/^ | $/g, '');
}

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly vocabSize: number;
  private readonly encoder: Map<string, number>;
  private readonly ranks: Map<string, number>; // "a b" -> merge rank
  private readonly byteEnc = bytesToUnicode();
  private readonly cache = new Map<string, number[]>();
  private readonly added = new Map<string, { re: RegExp; ids: Map<string, number> }>();

  /**
   * @param vocab token -> id (must hold every byte character and its "</w>" form)
   * @param merges merge pairs in rank order
   * @param bos / eos the vocab entries of the start/end tokens
   */
  constructor(vocab: Map<string, number>, merges: [string, string][], bos: string, eos: string, source = '<vocab>') {
    this.encoder = vocab;
    this.ranks = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));
    const bosId = vocab.get(bos);
    const eosId = vocab.get(eos);
    if (bosId === undefined || eosId === undefined) {
      throw new ConfigError(`${source}: the vocabulary has no ${bosId === undefined ? bos : eos} token`);
    }
    for (const ch of this.byteEnc) {
      if (!vocab.has(ch) || !vocab.has(`${ch}</w>`)) throw new ConfigError(`${source}: byte symbol ${ch} is missing`);
    }
    this.bosId = bosId;
    this.eosId = eosId;
    this.vocabSize = vocab.size;
  }

  /** From a model's tokenizer/ folder (vocab.json + merges.txt; bos/eos names from special_tokens_map.json). */
  static fromFolder(dir: string): ClipTokenizer {
    const vocabFile = path.join(dir, 'vocab.json');
    const mergesFile = path.join(dir, 'merges.txt');
    const raw = readJson(vocabFile);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new ConfigError(`${vocabFile}: not a token -> id object`);
    }
    const vocab = new Map<string, number>();
    for (const [k, v] of Object.entries(raw)) {
      if (!Number.isInteger(v)) throw new ConfigError(`${vocabFile}: id of ${JSON.stringify(k)} is not an integer`);
      vocab.set(k, v as number);
    }
    const lines = readText(mergesFile).split('\n');
    const merges: [string, string][] = [];
    lines.forEach((line, i) => {
      if ((i === 0 && line.startsWith('#version')) || line.trim() === '') return;
      const parts = line.split(' ');
      const where = `${mergesFile}:${i + 1}`;
      if (parts.length !== 2) throw new ConfigError(`${where}: expected two symbols, got ${JSON.stringify(line)}`);
      if (!vocab.has(parts[0] + parts[1])) throw new ConfigError(`${where}: merge ${parts.join('')} is not in vocab.json`);
      merges.push([parts[0], parts[1]]);
    });
    const names = { bos: HF_BOS, eos: HF_EOS };
    const mapFile = path.join(dir, 'special_tokens_map.json');
    if (fs.existsSync(mapFile)) {
      const m = readJson(mapFile) as Record<string, unknown>;
      const name = (v: unknown): string | undefined => {
        const content = (v as { content?: unknown } | null)?.content;
        return typeof v === 'string' ? v : typeof content === 'string' ? content : undefined;
      };
      names.bos = name(m.bos_token) ?? names.bos;
      names.eos = name(m.eos_token) ?? names.eos;
    }
    return new ClipTokenizer(vocab, merges, names.bos, names.eos, vocabFile);
  }

  /** From open_clip's bpe_simple_vocab_16e6.txt.gz, with open_clip's vocabulary order (SimpleTokenizer.__init__):
   * 256 byte symbols, the same with "</w>", one entry per merge, then <start_of_text>, <end_of_text>. */
  static fromOpenClipBpe(gzPath: string): ClipTokenizer {
    let text: string;
    try {
      text = gunzipSync(fs.readFileSync(gzPath)).toString('utf8');
    } catch (e) {
      throw new ConfigError(`cannot read ${gzPath} as a gzip file: ${(e as Error).message}`);
    }
    const lines = text.split('\n').slice(1, 49152 - 256 - 2 + 1);
    const merges = lines.map((l, i) => {
      const p = l.split(/\s+/).filter(Boolean);
      if (p.length !== 2) throw new ConfigError(`${gzPath}: merge line ${i + 2} is ${JSON.stringify(l)}`);
      return [p[0], p[1]] as [string, string];
    });
    const order = byteVocabOrder();
    const tokens = [...order, ...order.map((c) => `${c}</w>`), ...merges.map(([a, b]) => a + b), ...OPEN_CLIP_SPECIALS];
    const vocab = new Map(tokens.map((t, i) => [t, i]));
    return new ClipTokenizer(vocab, merges, OPEN_CLIP_SPECIALS[0], OPEN_CLIP_SPECIALS[1], gzPath);
  }

  /** The vocabulary id of a token string, or undefined. */
  tokenId(token: string): number | undefined {
    return this.encoder.get(token);
  }

  /** BPE ids of one pre-tokenized word (SimpleTokenizer.bpe + encoder lookup), cached. */
  private bpe(word: string): number[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    const bytes = Buffer.from(word, 'utf8');
    let parts = Array.from(bytes, (b) => this.byteEnc[b]);
    parts[parts.length - 1] += '</w>';
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = parts[best];
      const second = parts[best + 1];
      const next: string[] = [];
      for (let i = 0; i < parts.length;) {
        if (i < parts.length - 1 && parts[i] === first && parts[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else next.push(parts[i++]);
      }
      parts = next;
    }
    const ids = parts.map((p) => {
      const id = this.encoder.get(p);
      if (id === undefined) throw new ConfigError(`BPE produced ${JSON.stringify(p)}, which is not in the vocabulary`);
      return id;
    });
    this.cache.set(word, ids);
    return ids;
  }

  /** transformers' added tokens, matched in the raw text before any normalisation: the regex that splits them
   * out (longest first) and their ids. With pad "!" (SD 2.x), "!" is one of them. */
  private addedTokens(pad: ClipPad): { re: RegExp; ids: Map<string, number> } {
    const key = pad === 'bang' ? 'bang' : 'plain';
    let hit = this.added.get(key);
    if (!hit) {
      const ids = new Map<string, number>([
        [HF_BOS, this.bosId],
        [HF_EOS, this.eosId],
      ]);
      if (pad === 'bang') ids.set('!', this.padId('bang'));
      const alts = [...ids.keys()].sort((a, b) => b.length - a.length).map(escapeRe);
      hit = { re: new RegExp(`(${alts.join('|')})`), ids };
      this.added.set(key, hit);
    }
    return hit;
  }

  /** BPE ids of a prompt without bos/eos. `pad` matters only for the 'bang' rule of the hf cleans. */
  encode(text: string, opts: { clean?: ClipClean; pad?: ClipPad } = {}): number[] {
    const clean = opts.clean ?? 'hf';
    const out: number[] = [];
    if (clean === 'open_clip') {
      const t = whitespaceClean(htmlUnescape(htmlUnescape(fixText(text)))).toLowerCase();
      for (const m of t.matchAll(OPEN_CLIP_SPLIT)) {
        const i = OPEN_CLIP_SPECIALS.indexOf(m[0]);
        if (i >= 0) out.push(i === 0 ? this.bosId : this.eosId);
        else out.push(...this.bpe(m[0]));
      }
      return out;
    }
    const added = this.addedTokens(opts.pad ?? 'eos');
    text.split(added.re).forEach((piece, k) => {
      if (k % 2 === 1) {
        out.push(added.ids.get(piece)!);
        return;
      }
      if (clean === 'hf') {
        const t = Array.from(piece.normalize('NFC'), (c) => c.toLowerCase()).join('');
        for (const m of t.matchAll(HF_SPLIT)) out.push(...this.bpe(m[0]));
        return;
      }
      const t = whitespaceClean(fixText(piece)).toLowerCase();
      for (const m of t.matchAll(HF_SLOW_SPLIT)) {
        const w = m[0];
        out.push(...(w === HF_BOS ? [this.bosId] : w === HF_EOS ? [this.eosId] : this.bpe(w)));
      }
    });
    return out;
  }

  padId(pad: ClipPad): number {
    if (pad === 'zero') return 0;
    if (pad === 'eos') return this.eosId;
    const id = this.encoder.get('!');
    if (id === undefined) throw new ConfigError('pad token "!" is not in the vocabulary');
    return id;
  }

  /** Tokenize a batch to [n, length] ids (bos, bpe..., eos, pad...) with truncation keeping eos last. */
  tokenize(texts: readonly string[], opts: ClipTokenizeOptions): TokenBatch {
    const len = opts.length ?? CONTEXT_LENGTH;
    if (!Number.isInteger(len) || len < 2) throw new ConfigError(`context length must be an integer >= 2, got ${len}`);
    const n = texts.length;
    const ids = new Int32Array(n * len).fill(this.padId(opts.pad));
    const mask = new Int32Array(n * len);
    const untruncated: number[] = [];
    texts.forEach((text, r) => {
      const bpe = this.encode(text, opts);
      untruncated.push(bpe.length + 2);
      if (bpe.length + 2 > len) reportTruncation({ tokenizer: 'CLIP', limit: len, tokens: bpe.length + 2 });
      const seq = [this.bosId, ...bpe.slice(0, len - 2), this.eosId];
      ids.set(seq, r * len);
      mask.fill(1, r * len, r * len + seq.length);
    });
    return { ids, mask, shape: [n, len], untruncated };
  }
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

function readJson(file: string): unknown {
  const text = readText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: invalid JSON: ${(e as Error).message}`);
  }
}
