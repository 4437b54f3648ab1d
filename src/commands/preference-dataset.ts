// `reno preference dataset --pickapic DIR_OR_FILES --out DIR`: Pick-a-Pic v2 parquet shards -> the shared per-user
// preference format: DIR/images/<user>/<uid>.<ext>, DIR/pairs.jsonl ({"user","prompt","liked","disliked","split"},
// image paths relative to DIR) and DIR/stats.json. Two streamed passes over the shards (row group by row group):
// pass 1 reads ids and labels only (src/preference/pickapic.ts: row rules, filter, splits); pass 2 reads captions and JPEG
// bytes, validates every image by decoding it with sharp, keeps the original bytes, and writes the kept users' pairs.
// pairs.jsonl and stats.json are written under temporary names and renamed at the end (pairs.jsonl last), so an
// interrupted build never leaves a half-written pairs.jsonl; images are written atomically one by one.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { DataError, UsageError } from '../errors.js';
import { listParquetFiles, openParquet, parquetBatches, requireColumns } from '../data/parquet.js';
import {
  PAPER_SPLIT,
  PICKAPIC_COLUMNS,
  PICKAPIC_SCAN_COLUMNS,
  PickapicScan,
  classifyRow,
  describeSplits,
  pairKey,
  pairSplit,
  planSplits,
  rowWhere,
  splitStats,
  type SplitOptions,
  type SplitStats,
  type UserRole,
} from '../preference/pickapic.js';
import { progress } from '../util/progress.js';
import { makeDirs, writeFileAtomic } from '../util/files.js';

export interface PreferenceDatasetOptions extends Partial<SplitOptions> {
  /** Parquet files and/or folders (searched recursively for *.parquet). */
  pickapic: string | string[];
  /** Output folder. */
  out: string;
  /** Keep users with at least this many unique liked images (by uid). Default 11 (the paper). */
  minLiked?: number;
  /** Replace an existing dataset in `out` (default: refuse when out/pairs.jsonl exists). */
  overwrite?: boolean;
  /** Counts and messages (default process.stdout). */
  log?: NodeJS.WritableStream;
  /** Progress bars (default process.stderr); `quiet` turns them off. */
  progressStream?: NodeJS.WriteStream;
  quiet?: boolean;
  /** Images validated and written at the same time (default 4). */
  concurrency?: number;
}

export interface PreferenceDatasetStats {
  source: { files: string[]; rows: number; users: number };
  filter: { minLiked: number; keptUsers: number; dropped: Record<string, number>; bestMismatchExamples: string[] };
  split: SplitOptions & { seenShortfall: number };
  counts: SplitStats;
  /** User ids per role (seen test users are also train users). */
  users: Record<UserRole, string[]>;
  /** Image files written. */
  imagesWritten: number;
}

export interface PairLine {
  user: string;
  prompt: string;
  liked: string;
  disliked: string;
  split: 'train' | 'val' | 'test';
}

const EXT: Record<string, string> = { jpeg: 'jpg', png: 'png', webp: 'webp', gif: 'gif', tiff: 'tif', avif: 'avif', heif: 'heic' };

/** A file-name-safe form of an id: unchanged when it is already safe, else sanitised plus a short hash. */
export function safeName(id: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(id) && !id.endsWith('.')) return id;
  const base = id
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^[._-]+/, '')
    .slice(0, 60);
  return `${base}${base ? '-' : ''}${createHash('sha1').update(id).digest('hex').slice(0, 10)}`;
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/** Decode the bytes fully (a truncated or corrupt file fails) and return the file extension for its format. */
async function validateImage(bytes: Buffer, what: string): Promise<string> {
  try {
    const meta = await sharp(bytes).metadata();
    await sharp(bytes).raw().toBuffer();
    const ext = meta.format ? EXT[meta.format] : undefined;
    if (!ext) throw new Error(`unsupported format ${meta.format}`);
    return ext;
  } catch (e) {
    throw new DataError(`${what} is not a readable image (${(e as Error).message})`);
  }
}

function fraction(name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isFinite(x) || x < 0 || x > 1) throw new UsageError(`--${name} must be a fraction in [0, 1], got ${v}`);
  return x;
}

/** Build the dataset; prints the counts in the paper's terms and returns what stats.json holds. */
export async function preferenceDataset(o: PreferenceDatasetOptions): Promise<PreferenceDatasetStats> {
  const log = o.log ?? process.stdout;
  const say = (l: string) => log.write(l + '\n');
  const minLiked = o.minLiked ?? 11;
  if (!Number.isInteger(minLiked) || minLiked < 1) throw new UsageError(`--min-liked must be a positive integer, got ${o.minLiked}`);
  const split: SplitOptions = {
    valUsers: fraction('val-users', o.valUsers, PAPER_SPLIT.valUsers),
    testUsers: fraction('test-users', o.testUsers, PAPER_SPLIT.testUsers),
    seenShare: fraction('seen-share', o.seenShare, PAPER_SPLIT.seenShare),
    seenHoldout: fraction('seen-holdout', o.seenHoldout, PAPER_SPLIT.seenHoldout),
    seed: o.seed ?? PAPER_SPLIT.seed,
  };
  const out = path.resolve(o.out);
  const pairsFile = path.join(out, 'pairs.jsonl');
  if (fs.existsSync(pairsFile) && !o.overwrite) throw new UsageError(`${pairsFile} exists (use --overwrite to replace the dataset)`);

  // Footers first: every shard must have every column before any long pass starts.
  const files = listParquetFiles(o.pickapic);
  let totalRows = 0;
  for (const f of files) {
    const pf = await openParquet(f);
    try {
      requireColumns(pf, PICKAPIC_COLUMNS);
      totalRows += pf.numRows;
    } finally {
      await pf.close();
    }
  }
  const bar = (label: string) =>
    progress({ total: totalRows, label, quiet: o.quiet ?? false, ...(o.progressStream ? { stream: o.progressStream } : {}) });

  // Pass 1: ids and labels only.
  const scan = new PickapicScan();
  let p = bar('pass 1/2 (labels)');
  let done = 0;
  try {
    for (const f of files) {
      for await (const b of parquetBatches(f, { columns: [...PICKAPIC_SCAN_COLUMNS] })) {
        b.rows.forEach((row, i) => scan.add(row, rowWhere(f, b.rowStart + i)));
        done += b.rows.length;
        p.update(done, `${path.basename(f)} ${scan.users.size} users`);
      }
    }
  } finally {
    p.stop();
  }
  const kept = scan.kept(minLiked);
  if (kept.length === 0)
    throw new DataError(`no user has at least ${minLiked} unique liked images (${scan.users.size} users in ${files.length} shard(s))`);
  const plan = planSplits(scan.users, kept, split);
  const counts = splitStats(scan.users, plan);

  // Pass 2: images and pairs of kept users, each distinct pair once (its first occurrence).
  makeDirs(path.join(out, 'images'));
  for (const f of fs.readdirSync(out)) if (f.startsWith('.pairs.jsonl.partial-')) fs.rmSync(path.join(out, f), { force: true }); // left by a killed build
  const tmpPairs = path.join(out, `.pairs.jsonl.partial-${process.pid}`);
  const fh = await fs.promises.open(tmpPairs, 'w');
  const written = new Map<string, string>(); // "user\0uid" -> relative path
  const pending = new Map<string, Set<string>>(kept.map((u) => [u, new Set(scan.users.get(u)!.pairs.keys())]));
  let lines = 0;
  p = bar('pass 2/2 (images)');
  done = 0;
  try {
    for (const f of files) {
      for await (const b of parquetBatches(f, { columns: [...PICKAPIC_COLUMNS] })) {
        const batch: { line: PairLine; images: { bytes: Buffer; user: string; uid: string; what: string }[] }[] = [];
        b.rows.forEach((row, i) => {
          const where = rowWhere(f, b.rowStart + i);
          const c = classifyRow(row, where);
          if (c.kind !== 'pair') return;
          const key = pairKey(c.liked, c.disliked);
          const left = pending.get(c.user);
          if (!left?.delete(key)) return; // not a kept user, or a duplicate already written
          const images = ([0, 1] as const).map((side) => {
            const uid = side === c.likedSide ? c.liked : c.disliked;
            const bytes = row[`jpg_${side}`];
            if (!Buffer.isBuffer(bytes) || bytes.length === 0) throw new DataError(`${where}: 'jpg_${side}' (image ${uid}) is empty`);
            return { bytes, user: c.user, uid, what: `${where}: 'jpg_${side}' (image ${uid})` };
          });
          const caption = row.caption === null || row.caption === undefined ? '' : String(row.caption);
          batch.push({ line: { user: c.user, prompt: caption, liked: c.liked, disliked: c.disliked, split: pairSplit(plan, c.user, key) }, images });
        });
        const todo = new Map<string, (typeof batch)[number]['images'][number]>();
        for (const e of batch) for (const im of e.images) if (!written.has(`${im.user}\u0000${im.uid}`)) todo.set(`${im.user}\u0000${im.uid}`, im);
        await pool([...todo.values()], o.concurrency ?? 4, async (im) => {
          const ext = await validateImage(im.bytes, im.what);
          const rel = `images/${safeName(im.user)}/${safeName(im.uid)}.${ext}`;
          writeFileAtomic(path.join(out, rel), im.bytes);
          written.set(`${im.user}\u0000${im.uid}`, rel);
        });
        let text = '';
        for (const { line } of batch) {
          const rel = (uid: string) => written.get(`${line.user}\u0000${uid}`)!;
          text += JSON.stringify({ ...line, liked: rel(line.liked), disliked: rel(line.disliked) }) + '\n';
        }
        if (text) await fh.write(text);
        lines += batch.length;
        done += b.rows.length;
        p.update(done, `${path.basename(f)} ${lines} pairs`);
      }
    }
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => {});
    fs.rmSync(tmpPairs, { force: true });
    throw e;
  } finally {
    p.stop();
  }
  const expected = counts.train.pairs + counts.val.pairs + counts.test.pairs;
  if (lines !== expected) {
    fs.rmSync(tmpPairs, { force: true });
    throw new DataError(`pass 2 wrote ${lines} pairs but pass 1 planned ${expected}: the shards changed between the passes`);
  }

  const users: Record<UserRole, string[]> = { train: [], val: [], 'test-seen': [], 'test-unseen': [] };
  for (const u of kept) users[plan.roles.get(u)!].push(u);
  const stats: PreferenceDatasetStats = {
    source: { files: files.map((f) => path.basename(f)), rows: scan.totals.rows, users: scan.users.size },
    filter: { minLiked, keptUsers: kept.length, dropped: { ...scan.totals.dropped }, bestMismatchExamples: scan.totals.mismatchExamples },
    split: { ...split, seenShortfall: plan.seenShortfall },
    counts,
    users,
    imagesWritten: written.size,
  };
  writeFileAtomic(path.join(out, 'stats.json'), JSON.stringify(stats, null, 1) + '\n');
  fs.renameSync(tmpPairs, pairsFile);

  const d = scan.totals.dropped;
  say(`Pick-a-Pic: ${scan.totals.rows} rows in ${files.length} shard(s), ${scan.users.size} users`);
  say(
    `dropped: ${d.tie} ties, ${d.duplicate} duplicate pairs, ${d.unlabelled} unlabelled, ${d.best_mismatch} best_image_uid contradicting the labels, ${d.same_image} with the same image twice`,
  );
  if (scan.totals.mismatchExamples.length) say(`  best_image_uid mismatches at: ${scan.totals.mismatchExamples.join('; ')}`);
  say(`kept ${kept.length} users with at least ${minLiked} unique liked images`);
  for (const l of describeSplits(counts)) say(l);
  if (plan.seenShortfall > 0)
    say(`note: ${plan.seenShortfall} fewer seen test users than asked (no pairs to hold out without sharing an image with train)`);
  say(`wrote ${lines} pairs and ${written.size} images to ${out}`);
  return stats;
}
