// Prompts longer than a text encoder reads are cut by its tokenizer (CLIP's BPE: 77 tokens, start and end included;
// ImageReward's BERT: 35). The tokenizers report every cut here; a run collects the reports while it encodes its
// prompt (the generator and every reward, each with its own tokenizer) and warns once (truncationWarning).

export interface Truncation {
  /** the tokenizer family, as a user knows it: 'CLIP' or 'BERT' */
  tokenizer: string;
  /** tokens the encoder reads (special tokens included) */
  limit: number;
  /** tokens the prompt has (special tokens included) */
  tokens: number;
}

const sinks: ((t: Truncation) => void)[] = [];

/** Called by a tokenizer that cut a text to `limit` tokens. */
export function reportTruncation(t: Truncation): void {
  for (const s of sinks) s(t);
}

/** Run fn, returning what it returns and every cut reported while it ran. */
export function collectTruncations<T>(fn: () => T): { value: T; cuts: Truncation[] } {
  const cuts: Truncation[] = [];
  const sink = (t: Truncation) => cuts.push(t);
  sinks.push(sink);
  try {
    return { value: fn(), cuts };
  } finally {
    sinks.splice(sinks.indexOf(sink), 1);
  }
}

/**
 * One line for every cut of one prompt, null when nothing was cut: per tokenizer family the longest count (several
 * encoders of one family tokenize the same prompt, their cleaning can differ by a token).
 */
export function truncationWarning(cuts: Truncation[]): string | null {
  if (!cuts.length) return null;
  const byFamily = new Map<string, Truncation>();
  for (const c of cuts) {
    const k = `${c.tokenizer}:${c.limit}`;
    const had = byFamily.get(k);
    if (!had || c.tokens > had.tokens) byFamily.set(k, c);
  }
  const parts = [...byFamily.values()].map((c) => {
    const dropped = c.tokens - c.limit;
    return `${c.tokenizer} reads ${c.limit} of its ${c.tokens} tokens, ${dropped} token${dropped === 1 ? '' : 's'} dropped`;
  });
  return `the prompt is longer than the text encoders read, its end is ignored: ${parts.join('; ')}`;
}
