// The SmolVLM / Idefics3 tokenizer: the model folder's tokenizer.json (a GPT-2 style byte-level BPE from SmolLM2:
// Digits + ByteLevel pre-tokenizer, BPE model, ByteLevel decoder, added special tokens) run by
// @huggingface/tokenizers, the pure-JS port of the Rust `tokenizers` library. Checked on hand-built tokenizer.json
// files (test/unit/idefics3-tokenizer.test.ts): special tokens split out whole, merges applied by rank, digits
// split one by one, byte-level fallback for any UTF-8 text, both merge spellings ("a b" and ["a", "b"]),
// decode(encode(x)) == x. So no fallback BPE is needed here.
// Also the Idefics3Processor's image-token expansion for one unsplit image (processing_idefics3.py,
// get_image_prompt_string with rows = cols = 0): <fake_token_around_image><global-img><image>*S<fake_token_around_image>.
import { Tokenizer } from '@huggingface/tokenizers';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError, ModelNotFoundError } from '../../errors.js';

/** The Idefics3Processor's special token strings. */
export const IDEFICS3_TOKENS = {
  image: '<image>',
  fakeImage: '<fake_token_around_image>',
  globalImage: '<global-img>',
  endOfUtterance: '<end_of_utterance>',
} as const;

/**
 * GPT-2's bytes_to_unicode: the printable character that stands for each byte in a byte-level BPE vocabulary
 * (printable Latin-1 bytes map to themselves, the others to U+0100 onwards; a space is "Ġ", a newline "Ċ").
 */
export function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let i = 33; i <= 126; i++) keep.push(i);
  for (let i = 161; i <= 172; i++) keep.push(i);
  for (let i = 174; i <= 255; i++) keep.push(i);
  const out = new Array<string>(256);
  for (const b of keep) out[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (out[b] === undefined) out[b] = String.fromCodePoint(256 + n++);
  return out;
}

type Json = Record<string, unknown>;

function readJson(file: string, what: string): Json {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ModelNotFoundError(`${what} not found: ${file} (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new DataError(`${file}: ${(e as Error).message}`);
  }
}

export class Idefics3Tokenizer {
  private readonly tok: Tokenizer;

  constructor(
    tokenizerJson: Json,
    tokenizerConfig: Json = {},
    readonly source = '<memory>',
  ) {
    const model = tokenizerJson.model as Json | undefined;
    if (!model || model.type !== 'BPE') throw new DataError(`${source}: expected a BPE tokenizer.json, found model type ${String(model?.type)}`);
    try {
      this.tok = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new DataError(`${source}: cannot build the tokenizer: ${(e as Error).message}`);
    }
  }

  /** DIR/tokenizer.json, with DIR/tokenizer_config.json when present. */
  static load(dir: string): Idefics3Tokenizer {
    const file = path.join(dir, 'tokenizer.json');
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    const cfg = fs.existsSync(cfgFile) ? readJson(cfgFile, 'tokenizer config') : {};
    return new Idefics3Tokenizer(readJson(file, 'tokenizer'), cfg, file);
  }

  /** Token ids of `text`; special-token strings in it (e.g. "<image>") become their single ids. */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /** The token strings of `text` (byte-level symbols, e.g. "ĠScore"). */
  tokens(text: string): string[] {
    return this.tok.encode(text).tokens;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.tok.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /** The id of one token string (vocabulary or added token); throws when it is not in the vocabulary. */
  tokenId(token: string): number {
    const id = this.tok.token_to_id(token);
    if (id === undefined) throw new DataError(`${this.source}: token ${JSON.stringify(token)} is not in the vocabulary`);
    return id;
  }

  /** The id of the last token of `text` (how ViPer picks its "+" / "-" answer ids). */
  lastTokenId(text: string): number {
    const ids = this.encode(text, { addSpecialTokens: false });
    if (ids.length === 0) throw new DataError(`${this.source}: ${JSON.stringify(text)} encodes to no tokens`);
    return ids[ids.length - 1];
  }

  /** Vocabulary size including added tokens. */
  get size(): number {
    return this.tok.get_vocab(true).size;
  }
}

/** The token string of one unsplit image: <fake_token_around_image><global-img><image>*imageSeqLen<fake_token_around_image>. */
export function imagePromptString(imageSeqLen: number): string {
  const t = IDEFICS3_TOKENS;
  return `${t.fakeImage}${t.globalImage}${t.image.repeat(imageSeqLen)}${t.fakeImage}`;
}

/** Replace every "<image>" placeholder of a prompt by the expanded image tokens (Idefics3Processor, no splitting). */
export function expandImageTokens(prompt: string, imageSeqLen: number): string {
  return prompt.split(IDEFICS3_TOKENS.image).join(imagePromptString(imageSeqLen));
}
