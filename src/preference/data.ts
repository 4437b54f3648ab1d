// The preference dataset format every `reno preference` command shares:
//   DIR/images/...        the images (any format sharp reads)
//   DIR/pairs.jsonl       one pair a line: {"user", "prompt", "liked", "disliked", "split"}
//                         liked / disliked are paths relative to DIR; split is train, val or test; other keys are
//                         ignored (the synthetic world adds "meta"); blank lines are skipped
// A test user is "seen" when they also have train pairs, "unseen" otherwise (seed paper 4.1).
// References for a target pair are other pairs of the same user: for a train target, the user's other train pairs;
// for a val/test target, the user's train pairs and the other pairs of the target's split (so an unseen user's
// history comes from their own other test pairs). Sampling is seeded; the reader names file, line and field.
import * as tf from '../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import { DataError } from '../errors.js';
import { readImage } from '../image/png.js';
import { shuffle } from '../util/shuffle.js';

export const SPLITS = ['train', 'val', 'test'] as const;
export type Split = (typeof SPLITS)[number];

export interface PreferencePair {
  /** Index in the dataset (line order, blank lines skipped). */
  index: number;
  /** 1-based line number in pairs.jsonl. */
  line: number;
  user: string;
  prompt: string;
  /** Absolute image paths. */
  liked: string;
  disliked: string;
  split: Split;
}

export interface PreferenceDataset {
  dir: string;
  pairs: PreferencePair[];
  /** user -> indices of their pairs, in file order. */
  byUser: Map<string, number[]>;
  /** Users with at least one train pair. */
  seen: Set<string>;
}

/** Parse DIR/pairs.jsonl; every line is validated and every image must exist (unless checkFiles is false). */
export function readPreferenceDataset(dir: string, o: { checkFiles?: boolean } = {}): PreferenceDataset {
  const root = path.resolve(dir);
  const file = path.join(root, 'pairs.jsonl');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError(`no preference dataset in ${root}: cannot read pairs.jsonl (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const pairs: PreferencePair[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (!raw.trim()) return;
    const where = `${file}:${line}`;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new DataError(`${where}: not valid JSON (${(e as Error).message})`);
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new DataError(`${where}: a pair must be a JSON object`);
    const o2 = v as Record<string, unknown>;
    const str = (k: string, allowEmpty = false): string => {
      const x = o2[k];
      if (typeof x !== 'string') throw new DataError(`${where}: "${k}" must be a string, found ${x === undefined ? 'nothing' : JSON.stringify(x)}`);
      if (!allowEmpty && !x.trim()) throw new DataError(`${where}: "${k}" is empty`);
      return x;
    };
    const image = (k: string): string => {
      const rel = str(k);
      if (path.isAbsolute(rel) || rel.split(/[\\/]/).includes('..'))
        throw new DataError(`${where}: "${k}" must be a path relative to ${root} without "..", found ${JSON.stringify(rel)}`);
      const abs = path.join(root, rel);
      if ((o.checkFiles ?? true) && !fs.existsSync(abs)) throw new DataError(`${where}: "${k}" image not found: ${abs}`);
      return abs;
    };
    const split = str('split');
    if (!(SPLITS as readonly string[]).includes(split))
      throw new DataError(`${where}: "split" must be one of ${SPLITS.join(', ')}, found ${JSON.stringify(split)}`);
    const p: PreferencePair = {
      index: pairs.length,
      line,
      user: str('user'),
      prompt: str('prompt', true),
      liked: image('liked'),
      disliked: image('disliked'),
      split: split as Split,
    };
    if (p.liked === p.disliked) throw new DataError(`${where}: "liked" and "disliked" are the same image`);
    pairs.push(p);
  });
  if (!pairs.length) throw new DataError(`${file}: no pairs`);
  const byUser = new Map<string, number[]>();
  for (const p of pairs) {
    const list = byUser.get(p.user) ?? [];
    list.push(p.index);
    byUser.set(p.user, list);
  }
  const seen = new Set(pairs.filter((p) => p.split === 'train').map((p) => p.user));
  return { dir: root, pairs, byUser, seen };
}

/** Pairs of one split; for test, optionally only seen or unseen users. */
export function splitPairs(ds: PreferenceDataset, split: Split, users: 'all' | 'seen' | 'unseen' = 'all'): PreferencePair[] {
  return ds.pairs.filter((p) => p.split === split && (users === 'all' || (users === 'seen') === ds.seen.has(p.user)));
}

/** The pairs a target may take references from (see the header): never the target itself. */
export function referencePool(ds: PreferenceDataset, target: PreferencePair): PreferencePair[] {
  return (ds.byUser.get(target.user) ?? [])
    .map((i) => ds.pairs[i])
    .filter((p) => p.index !== target.index && (p.split === 'train' || (target.split !== 'train' && p.split === target.split)));
}

/**
 * Up to nRef references for a target, drawn without replacement. `shuffled` (training) returns them in random
 * order; otherwise (evaluation) in file order, so the most recent pair is nearest the target.
 */
export function sampleReferences(
  ds: PreferenceDataset,
  target: PreferencePair,
  nRef: number,
  rng: () => number,
  shuffled: boolean,
): PreferencePair[] {
  const pool = referencePool(ds, target);
  const picked = shuffle(pool, rng).slice(0, nRef);
  return shuffled ? picked : picked.sort((a, b) => a.index - b.index);
}

/** Train targets that have at least one reference. */
export function trainTargets(ds: PreferenceDataset): PreferencePair[] {
  return splitPairs(ds, 'train').filter((p) => referencePool(ds, p).length > 0);
}

/** A deterministic generator for one (tag, seed, indices...) tuple, e.g. rngFor('train', seed, step, k). */
export function rngFor(...parts: (string | number)[]): () => number {
  return seedrandom(parts.join(':'));
}

/**
 * Decoded images as [1, H, W, 3] in [0, 1] (or as `transform` leaves them) with a bounded cache: least recently used
 * images are dropped beyond `capacity` images or `maxBytes` (1 GiB by default: about 340 images normalised at 512 px,
 * all of a 64 px world), so a training run reads each file once while memory stays bounded. Cached tensors are owned
 * by the cache: do not dispose them.
 */
export class ImageCache {
  private readonly map = new Map<string, tf.Tensor4D>();
  private bytes = 0;
  constructor(
    readonly capacity = 4096,
    /** Applied once per image after decoding (e.g. the model's pixels()); owns nothing of its input. */
    private readonly transform?: (x: tf.Tensor4D) => tf.Tensor4D,
    readonly maxBytes = 2 ** 30,
  ) {}

  async get(file: string): Promise<tf.Tensor4D> {
    const hit = this.map.get(file);
    if (hit) {
      this.map.delete(file);
      this.map.set(file, hit);
      return hit;
    }
    const raw = await readImage(file);
    let t = raw;
    if (this.transform) {
      t = tf.tidy(() => this.transform!(raw));
      raw.dispose();
    }
    this.map.set(file, t);
    this.bytes += t.size * 4;
    while (this.map.size > 1 && (this.map.size > this.capacity || this.bytes > this.maxBytes)) {
      const [oldKey, old] = this.map.entries().next().value as [string, tf.Tensor4D];
      this.map.delete(oldKey);
      this.bytes -= old.size * 4;
      old.dispose();
    }
    return t;
  }

  dispose(): void {
    for (const t of this.map.values()) t.dispose();
    this.map.clear();
    this.bytes = 0;
  }
}
