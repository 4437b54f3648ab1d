// Pick-a-Pic v2 -> per-user preference dataset (seed paper section 4.1). Pure parts: the row rules, pass 1 (per-user
// counts: unique liked image uids and the set of distinct non-tie pairs, no image bytes), and the seeded split of
// users and pairs into train / val / test with seen and unseen test users. Pass 2 (images and pairs.jsonl) is in
// src/commands/preference-dataset.ts.
//
// Row rules (one parquet row = one ranked pair shown to one user):
//   - tie: label_0 == label_1 == 0.5 -> dropped (counted);
//   - liked = the image whose label is 1 ((1,0) -> image 0, (0,1) -> image 1); any other label combination (nulls,
//     unlabelled rows) -> dropped as 'unlabelled';
//   - best_image_uid, when non-empty, must equal the liked image's uid; a row where it names the other image (or an
//     unknown uid) contradicts its labels and is dropped as 'best_mismatch' (counted, first ones reported);
//   - image_0_uid == image_1_uid -> dropped as 'same_image';
//   - a pair (user, liked uid, disliked uid) seen again (Pick-a-Pic repeats rows across shards and the *_unique
//     splits) is kept once, at its first occurrence in sorted-shard, row order ('duplicate').
//   - a null user_id or image uid is a DataError naming the shard, the row and the column.
import seedrandom from 'seedrandom';
import { DataError } from '../errors.js';
import { shuffle } from '../util/shuffle.js';
import type { ParquetRow } from '../data/parquet.js';

/** Columns read in pass 1 (small: ids and labels). */
export const PICKAPIC_SCAN_COLUMNS = ['user_id', 'label_0', 'label_1', 'image_0_uid', 'image_1_uid', 'best_image_uid'] as const;
/** Columns every shard must have (pass 2 also reads the caption and both JPEGs). */
export const PICKAPIC_COLUMNS = [...PICKAPIC_SCAN_COLUMNS, 'caption', 'jpg_0', 'jpg_1'] as const;

export type DropReason = 'tie' | 'unlabelled' | 'best_mismatch' | 'same_image';

export type RowClass =
  { kind: 'pair'; user: string; liked: string; disliked: string; likedSide: 0 | 1 } | { kind: 'drop'; user: string; reason: DropReason };

/** "shard.parquet row 17" */
export const rowWhere = (file: string, row: number) => `${file} row ${row}`;

function idOf(v: unknown, col: string, where: string): string {
  if (v === null || v === undefined || v === '') throw new DataError(`${where}: '${col}' is empty`);
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'string') return String(v);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  throw new DataError(`${where}: '${col}' has an unexpected value type (${typeof v})`);
}

/** Classify one row by the rules above. */
export function classifyRow(row: ParquetRow, where: string): RowClass {
  const user = idOf(row.user_id, 'user_id', where);
  const l0 = row.label_0;
  const l1 = row.label_1;
  if (l0 === 0.5 && l1 === 0.5) return { kind: 'drop', user, reason: 'tie' };
  let likedSide: 0 | 1;
  if (l0 === 1 && l1 === 0) likedSide = 0;
  else if (l0 === 0 && l1 === 1) likedSide = 1;
  else return { kind: 'drop', user, reason: 'unlabelled' };
  const u0 = idOf(row.image_0_uid, 'image_0_uid', where);
  const u1 = idOf(row.image_1_uid, 'image_1_uid', where);
  if (u0 === u1) return { kind: 'drop', user, reason: 'same_image' };
  const liked = likedSide === 0 ? u0 : u1;
  const disliked = likedSide === 0 ? u1 : u0;
  const best = row.best_image_uid;
  if (best !== null && best !== undefined && best !== '' && String(best) !== liked) return { kind: 'drop', user, reason: 'best_mismatch' };
  return { kind: 'pair', user, liked, disliked, likedSide };
}

export const pairKey = (liked: string, disliked: string) => `${liked}\u0000${disliked}`;

/** Pass-1 summary of one user. */
export interface UserScan {
  rows: number;
  ties: number;
  /** Rows dropped for another reason (unlabelled, best_mismatch, same_image). */
  dropped: number;
  duplicates: number;
  /** Distinct non-tie pairs, key = pairKey(liked, disliked), in first-seen order. */
  pairs: Map<string, [liked: string, disliked: string]>;
  /** Unique liked image uids over the kept pairs. */
  liked: Set<string>;
}

export interface ScanTotals {
  rows: number;
  dropped: Record<DropReason | 'duplicate', number>;
  /** First few rows dropped for a best_image_uid that contradicts the labels ("file row N"). */
  mismatchExamples: string[];
}

/** Pass 1 state: feed rows with `add`, then read `users` and `totals`. */
export class PickapicScan {
  readonly users = new Map<string, UserScan>();
  readonly totals: ScanTotals = { rows: 0, dropped: { tie: 0, unlabelled: 0, best_mismatch: 0, same_image: 0, duplicate: 0 }, mismatchExamples: [] };

  add(row: ParquetRow, where: string): void {
    const c = classifyRow(row, where);
    this.totals.rows++;
    let u = this.users.get(c.user);
    if (!u) this.users.set(c.user, (u = { rows: 0, ties: 0, dropped: 0, duplicates: 0, pairs: new Map(), liked: new Set() }));
    u.rows++;
    if (c.kind === 'drop') {
      this.totals.dropped[c.reason]++;
      if (c.reason === 'tie') u.ties++;
      else u.dropped++;
      if (c.reason === 'best_mismatch' && this.totals.mismatchExamples.length < 5) this.totals.mismatchExamples.push(where);
      return;
    }
    const key = pairKey(c.liked, c.disliked);
    if (u.pairs.has(key)) {
      u.duplicates++;
      this.totals.dropped.duplicate++;
      return;
    }
    u.pairs.set(key, [c.liked, c.disliked]);
    u.liked.add(c.liked);
  }

  /** Users with at least `minLiked` unique liked images, in natural id order. */
  kept(minLiked: number): string[] {
    return [...this.users]
      .filter(([, u]) => u.liked.size >= minLiked)
      .map(([id]) => id)
      .sort(compareIds);
  }
}

/** Natural order of ids ("2" < "10"). */
export function compareIds(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true }) || (a < b ? -1 : a > b ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Splits

/**
 * Split proportions. The paper (sec. 4.1) reports train 2,267 users / 224,952 images, val 89 / 1,707, test 70 / 2,234
 * with 459 test images from seen users and 1,775 from unseen users. Seen users are train users, so the distinct users
 * are 2,267 + 89 + (unseen test users). The paper gives no per-kind user counts; at the test set's 31.9 images per user
 * the 1,775 unseen images are about 56 users and the 459 seen images about 14, i.e. about 2,412 users in all. Hence:
 *   valUsers   0.037 = 89 / 2,412  of the kept users: all their pairs go to val (never in train or test);
 *   testUsers  0.029 = 70 / 2,412  of the kept users are test users;
 *   seenShare  0.2   ~ 459 / 2,234 of the test users are seen (train users with held-out pairs), the rest unseen
 *                    (all their pairs in test, none in train);
 *   seenHoldout 0.25 ~ 33 / (99 + 33): part of a seen user's pairs held out for test (a seen test user has about
 *                    2,234 / 70 = 33 test images, a train user about 224,952 / 2,267 = 99 images).
 * Counts: nVal = round(U * valUsers) (at least 1 when valUsers > 0), nTest = round(U * testUsers) (at least 1, and at
 * least 2 when 0 < seenShare < 1 so both kinds exist), nSeen = round(nTest * seenShare) clamped to [1, nTest - 1] in
 * that case, nUnseen = nTest - nSeen.
 */
export interface SplitOptions {
  valUsers: number;
  testUsers: number;
  seenShare: number;
  seenHoldout: number;
  seed: number;
}

export const PAPER_SPLIT: Readonly<SplitOptions> = { valUsers: 0.037, testUsers: 0.029, seenShare: 0.2, seenHoldout: 0.25, seed: 0 };

export type UserRole = 'train' | 'val' | 'test-seen' | 'test-unseen';
export type Split = 'train' | 'val' | 'test';

export interface SplitPlan {
  /** Every kept user's role; a 'test-seen' user is also a train user. */
  roles: Map<string, UserRole>;
  /** For seen users: the pair keys held out for test (every other pair of theirs is train). */
  heldOut: Map<string, Set<string>>;
  /** Users asked for as seen that had no pairs to hold out without sharing an image with their train pairs. */
  seenShortfall: number;
}

function checkFraction(name: string, v: number): void {
  if (!Number.isFinite(v) || v < 0 || v > 1) throw new DataError(`split option ${name} must be a fraction in [0, 1], got ${v}`);
}

export function splitCounts(nUsers: number, o: SplitOptions): { val: number; seen: number; unseen: number } {
  for (const k of ['valUsers', 'testUsers', 'seenShare', 'seenHoldout'] as const) checkFraction(k, o[k]);
  const val = o.valUsers > 0 ? Math.max(1, Math.round(nUsers * o.valUsers)) : 0;
  const both = o.seenShare > 0 && o.seenShare < 1;
  const test = o.testUsers > 0 ? Math.max(both ? 2 : 1, Math.round(nUsers * o.testUsers)) : 0;
  let seen = Math.round(test * o.seenShare);
  if (both && test >= 2) seen = Math.min(test - 1, Math.max(1, seen));
  const unseen = test - seen;
  if (nUsers - val - unseen < Math.max(1, seen)) {
    throw new DataError(
      `too few users to split: ${nUsers} kept users, ${val} val + ${unseen} unseen test users leave ${nUsers - val - unseen} train users for ${seen} seen test users`,
    );
  }
  return { val, seen, unseen };
}

/** Seeded Fisher-Yates shuffle (seedrandom ARC4 stream). */
export function shuffled<T>(items: readonly T[], seed: string): T[] {
  return shuffle(items, seedrandom(seed));
}

/** Groups of a user's pairs linked by a shared image uid (union-find), each a list of pair keys in input order. */
export function imageComponents(pairs: ReadonlyMap<string, readonly [string, string]>): string[][] {
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r)! !== r) r = parent.get(r)!;
    let y = x;
    while (y !== r) {
      const n = parent.get(y)!;
      parent.set(y, r);
      y = n;
    }
    return r;
  };
  for (const [a, b] of pairs.values()) {
    if (!parent.has(a)) parent.set(a, a);
    if (!parent.has(b)) parent.set(b, b);
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(ra, rb);
  }
  const groups = new Map<string, string[]>();
  for (const [key, [a]] of pairs) {
    const r = find(a);
    const g = groups.get(r);
    if (g) g.push(key);
    else groups.set(r, [key]);
  }
  return [...groups.values()];
}

/**
 * Hold out about `fraction` of a seen user's pairs for test: whole image components (so no test image is in any of
 * the user's train pairs), taken in seeded order until the held-out pairs reach round(fraction * pairs) (at least one
 * component), always leaving at least one component in train. Null when the user has a single component.
 */
export function holdOut(pairs: ReadonlyMap<string, readonly [string, string]>, fraction: number, seed: string): Set<string> | null {
  const comps = imageComponents(pairs);
  if (comps.length < 2) return null;
  const target = Math.max(1, Math.round(fraction * pairs.size));
  const out = new Set<string>();
  for (const c of shuffled(comps, seed)) {
    if (out.size >= target) break;
    if (out.size + c.length >= pairs.size) continue; // would leave nothing in train
    for (const k of c) out.add(k);
  }
  return out.size ? out : null;
}

/** Assign the kept users (and the pairs of seen users) to splits, deterministically from `o.seed`. */
export function planSplits(users: ReadonlyMap<string, Pick<UserScan, 'pairs'>>, kept: readonly string[], o: SplitOptions): SplitPlan {
  const n = splitCounts(kept.length, o);
  const order = shuffled([...kept].sort(compareIds), `reno-pickapic-split:${o.seed}`);
  const roles = new Map<string, UserRole>();
  const heldOut = new Map<string, Set<string>>();
  order.forEach((u, i) => roles.set(u, i < n.val ? 'val' : i < n.val + n.unseen ? 'test-unseen' : 'train'));
  let seen = 0;
  for (const u of order.slice(n.val + n.unseen)) {
    if (seen >= n.seen) break;
    const h = holdOut(users.get(u)!.pairs, o.seenHoldout, `reno-pickapic-holdout:${o.seed}:${u}`);
    if (!h) continue;
    roles.set(u, 'test-seen');
    heldOut.set(u, h);
    seen++;
  }
  return { roles, heldOut, seenShortfall: n.seen - seen };
}

/** The split of one pair of a kept user. */
export function pairSplit(plan: SplitPlan, user: string, key: string): Split {
  const role = plan.roles.get(user);
  if (role === 'val') return 'val';
  if (role === 'test-unseen') return 'test';
  if (role === 'test-seen') return plan.heldOut.get(user)!.has(key) ? 'test' : 'train';
  return 'train';
}

// ---------------------------------------------------------------------------------------------------------------
// Counts in the paper's terms

export interface PartCounts {
  users: number;
  pairs: number;
  /** Distinct images (per user, by uid) in the part's pairs. */
  images: number;
}

export interface SplitStats {
  train: PartCounts;
  val: PartCounts;
  test: PartCounts & { seen: PartCounts; unseen: PartCounts };
}

/** Counts per split (and seen / unseen test) from the plan, before any image is written. */
export function splitStats(users: ReadonlyMap<string, Pick<UserScan, 'pairs'>>, plan: SplitPlan): SplitStats {
  const parts = { train: new Acc(), val: new Acc(), seen: new Acc(), unseen: new Acc() };
  for (const [user, role] of plan.roles) {
    for (const [key, [a, b]] of users.get(user)!.pairs) {
      const s = pairSplit(plan, user, key);
      const acc = s === 'train' ? parts.train : s === 'val' ? parts.val : role === 'test-seen' ? parts.seen : parts.unseen;
      acc.add(user, a, b);
    }
  }
  const seen = parts.seen.counts();
  const unseen = parts.unseen.counts();
  return {
    train: parts.train.counts(),
    val: parts.val.counts(),
    test: { users: seen.users + unseen.users, pairs: seen.pairs + unseen.pairs, images: seen.images + unseen.images, seen, unseen },
  };
}

class Acc {
  private users = new Set<string>();
  private images = new Set<string>();
  private pairs = 0;
  add(user: string, a: string, b: string): void {
    this.users.add(user);
    this.images.add(`${user}\u0000${a}`);
    this.images.add(`${user}\u0000${b}`);
    this.pairs++;
  }
  counts(): PartCounts {
    return { users: this.users.size, pairs: this.pairs, images: this.images.size };
  }
}

/** The counts as sentences in the paper's terms (sec. 4.1). */
export function describeSplits(s: SplitStats): string[] {
  const f = (n: number) => n.toLocaleString('en-US');
  const part = (name: string, p: PartCounts) => `${name}: ${f(p.images)} images and ${f(p.users)} users (${f(p.pairs)} pairs)`;
  return [
    part('train', s.train),
    part('val', s.val),
    part('test', s.test),
    `test: ${f(s.test.seen.images)} images from ${f(s.test.seen.users)} seen users (${f(s.test.seen.pairs)} pairs), ${f(s.test.unseen.images)} images from ${f(s.test.unseen.users)} unseen users (${f(s.test.unseen.pairs)} pairs)`,
  ];
}
