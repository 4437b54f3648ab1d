// The token layout of the preference model (seed paper section 3.1 and 4.1, with ViPer's chat framing). One
// sequence is
//
//   [P_1 .. P_Lp]                      learnable prototypes, eq. (1) x'_p = [P_v; x_u]: embedding rows at positions
//                                      0 .. Lp-1 (none when Lp = 0), fed as forwardEmbeds' prefixEmbeds
//   <|im_start|>                       BOS, once, at position Lp
//   reference entries, 2 per pair      for each reference pair, oldest first: the liked entry, then the disliked one
//     User:<IMG>The prompt is <prompt>. Score for this image?<end_of_utterance>\nAssistant: +<end_of_utterance>\n
//     User:<IMG>The prompt is <prompt>. Score for this image?<end_of_utterance>\nAssistant: -<end_of_utterance>\n
//   the target entry (no label)
//     User:<IMG>The prompt is <prompt>. Score for this image?<end_of_utterance>\nAssistant:
//                                      -> the "+" and "-" logits are read at this last position (":"), eq. (5)
//
// <IMG> is the Idefics3 processor's expansion of one unsplit image: <fake_token_around_image><global-img>
// <image> x S <fake_token_around_image> (S = imageSeqLen, 16 for the tiny backbone, 64 for SmolVLM-256M at 512 px);
// the S <image> rows are replaced by the connector outputs. The labels are the tokens of " +" and " -" (one token
// each in SmolVLM's byte-level BPE: "Ġ+", "Ġ-"); the space before {label} / {prompt} in the template is moved into
// the slot, so "Assistant: +" tokenizes as "Assistant", ":", "Ġ+" and the target ends at ":".
// Without a prompt (--no-prompt, ViPer*, or an empty prompt) an entry is ViPer's own:
//     User:<IMG>Score for this image?<end_of_utterance>\nAssistant: +<end_of_utterance>\n
// Each literal piece and the prompt are tokenized separately (so the prompt is truncated to exactly
// promptMaxTokens = 100 tokens, paper 4.1); positions are consecutive, with no padding anywhere.
// During training the order of the reference pairs is shuffled every sample, and so is the order of the two
// entries of each pair (src/preference/train.ts); at inference the order above is used.
import { ConfigError } from '../errors.js';
import { IDEFICS3_TOKENS, imagePromptString, type Idefics3Tokenizer } from '../models/idefics3/tokenizer.js';

export interface PreferenceTemplate {
  /** Once at the start of the token sequence (after the prototypes). */
  bos: string;
  /** One reference entry with {prompt} and {label}; the target is the part before {label}. */
  entry: string;
  /** The same without a prompt (used for --no-prompt and for an empty prompt). */
  entryNoPrompt: string;
  /** Label texts put at {label}. */
  like: string;
  dislike: string;
  /** Prompts are cut to this many tokens. */
  promptMaxTokens: number;
}

export const DEFAULT_TEMPLATE: PreferenceTemplate = {
  bos: '<|im_start|>',
  entry: 'User:<image>The prompt is {prompt}. Score for this image?<end_of_utterance>\nAssistant: {label}<end_of_utterance>\n',
  entryNoPrompt: 'User:<image>Score for this image?<end_of_utterance>\nAssistant: {label}<end_of_utterance>\n',
  like: '+',
  dislike: '-',
  promptMaxTokens: 100,
};

export type Label = 'like' | 'dislike';

/** One entry's token pieces: ids before the image, after it up to the prompt, after the prompt up to the label, after the label. */
interface EntryPieces {
  head: number[];
  mid: number[] | null; // between image and prompt (null: no prompt slot)
  tail: number[]; // up to the label (the target ends here)
  end: number[]; // after the label
}

export interface EntryRef {
  prompt: string;
  label: Label;
}

/** Token ids of a sequence plus where its images and labels are (indices into ids). */
export interface TokenSequence {
  ids: number[];
  /** Index of the first <image> token of each image, in order. */
  imageStarts: number[];
  /** Index of each label token (history) in order; empty for a target. */
  labelPositions: number[];
}

const SLOT = /(<image>|\{prompt\}|\{label\})/;

export class SequenceLayout {
  readonly bosIds: number[];
  readonly imageIds: number[];
  /** Index of the first <image> token inside imageIds. */
  private readonly imageOffset: number;
  readonly labelIds: Record<Label, number>;
  private readonly withPrompt: EntryPieces;
  private readonly noPrompt: EntryPieces;

  constructor(
    private readonly tok: Idefics3Tokenizer,
    readonly template: PreferenceTemplate,
    readonly imageSeqLen: number,
    /** false: every entry uses entryNoPrompt (ViPer*). */
    readonly usePrompt = true,
  ) {
    const enc = (s: string) => (s ? tok.encode(s, { addSpecialTokens: false }) : []);
    this.bosIds = enc(template.bos);
    this.imageIds = enc(imagePromptString(imageSeqLen));
    this.imageOffset = this.imageIds.indexOf(tok.tokenId(IDEFICS3_TOKENS.image));
    const label = (t: string): number => {
      const ids = enc(' ' + t);
      if (ids.length !== 1) throw new ConfigError(`preference template: the label " ${t}" must be one token, the tokenizer makes ${ids.length}`);
      return ids[0];
    };
    this.labelIds = { like: label(template.like), dislike: label(template.dislike) };
    if (this.labelIds.like === this.labelIds.dislike) throw new ConfigError('preference template: the like and dislike labels are the same token');
    this.withPrompt = this.pieces(template.entry, true, enc);
    this.noPrompt = this.pieces(template.entryNoPrompt, false, enc);
  }

  /** Split an entry template into its literal pieces around <image>, {prompt}, {label}. */
  private pieces(t: string, wantPrompt: boolean, enc: (s: string) => number[]): EntryPieces {
    const parts = t.split(SLOT);
    const slots = parts.filter((_, i) => i % 2 === 1);
    const expect = wantPrompt ? ['<image>', '{prompt}', '{label}'] : ['<image>', '{label}'];
    if (slots.join() !== expect.join())
      throw new ConfigError(`preference template ${JSON.stringify(t)} must contain ${expect.join(', ')} once each, in this order`);
    const lit = parts.filter((_, i) => i % 2 === 0);
    // the space before {prompt} and {label} belongs to the slot (" +" is one token, "Ġ+")
    const trimSpace = (s: string, slot: string) => {
      if (slot !== '<image>' && !s.endsWith(' ')) throw new ConfigError(`preference template: a space must come before ${slot}`);
      return slot === '<image>' ? s : s.slice(0, -1);
    };
    const texts = lit.slice(0, -1).map((s, i) => trimSpace(s, expect[i]));
    texts.push(lit[lit.length - 1]);
    if (wantPrompt) return { head: enc(texts[0]), mid: enc(texts[1]), tail: enc(texts[2]), end: enc(texts[3]) };
    return { head: enc(texts[0]), mid: null, tail: enc(texts[1]), end: enc(texts[2]) };
  }

  /** Prompt ids with the leading space, cut to promptMaxTokens; [] for an empty prompt or --no-prompt. */
  promptIds(prompt: string): number[] {
    const p = prompt.trim();
    if (!this.usePrompt || !p) return [];
    return this.tok.encode(' ' + p, { addSpecialTokens: false }).slice(0, this.template.promptMaxTokens);
  }

  /** One entry appended to `seq`; with a label for a reference, without for the target. */
  private append(seq: TokenSequence, prompt: string, label: Label | null): void {
    const pids = this.promptIds(prompt);
    const pc = pids.length ? this.withPrompt : this.noPrompt;
    seq.ids.push(...pc.head);
    seq.imageStarts.push(seq.ids.length + this.imageOffset); // after <fake_token_around_image><global-img>
    seq.ids.push(...this.imageIds);
    if (pc.mid) seq.ids.push(...pc.mid, ...pids);
    seq.ids.push(...pc.tail);
    if (label === null) return;
    seq.labelPositions.push(seq.ids.length);
    seq.ids.push(this.labelIds[label], ...pc.end);
  }

  /** BOS and the reference entries (the constant prefix of every target of one history). */
  history(refs: EntryRef[]): TokenSequence {
    const seq: TokenSequence = { ids: [...this.bosIds], imageStarts: [], labelPositions: [] };
    for (const r of refs) this.append(seq, r.prompt, r.label);
    return seq;
  }

  /** The target entry; the score is read at its last index. */
  target(prompt: string): TokenSequence {
    const seq: TokenSequence = { ids: [], imageStarts: [], labelPositions: [] };
    this.append(seq, prompt, null);
    return seq;
  }

  /** History followed by the target in one sequence (for the uncached path and tests). */
  full(refs: EntryRef[], prompt: string): TokenSequence {
    const h = this.history(refs);
    const t = this.target(prompt);
    return {
      ids: [...h.ids, ...t.ids],
      imageStarts: [...h.imageStarts, ...t.imageStarts.map((i) => i + h.ids.length)],
      labelPositions: h.labelPositions,
    };
  }

  /** The template as stored in a checkpoint's config.json (with the resolved token ids, for readers). */
  describe(): Record<string, unknown> {
    return {
      ...this.template,
      use_prompt: this.usePrompt,
      image: '<fake_token_around_image><global-img><image>*S<fake_token_around_image>',
      image_seq_len: this.imageSeqLen,
      label_token_ids: this.labelIds,
      prototypes: 'embedding rows before the BOS, positions 0..Lp-1',
      read_at: 'the last token of the target entry',
      reference_order: 'pairs oldest first, liked entry then disliked entry (both orders shuffled every training sample)',
    };
  }
}
