// Downloads from the Hugging Face hub into the cache layout huggingface_hub writes (so either tool reuses the other's
// files): <cache>/models--ORG--NAME/blobs/<etag>, snapshots/<commit>/<path> (a relative symlink to the blob, or a
// copy where symlinks fail) and refs/<revision> (the commit hash). The requests, the resumed transfer and its checks
// are src/weights/hub-http.ts.
// One process at a time writes a blob: a lock file at huggingface_hub's place, <cache>/.locks/models--ORG--NAME/
// <etag>.lock (src/util/lockfile.ts). huggingface_hub holds that file with flock(2), which Node cannot take without a
// native addon: reno processes exclude each other, a Python download running at the same moment is not seen (and
// the empty lock file huggingface_hub leaves behind counts as free once it is 10 s old).
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { ModelEntry } from '../config/models.js';
import { describeOwner, waitLock } from '../util/lockfile.js';
import { hfRepoDir, repoFolderName } from './hub.js';
import { context, DownloadError, fetchBlob, fetchFileMetadata, fileSize, formatBytes, HEX40, Progress, type DownloadOptions } from './hub-http.js';

export {
  DEFAULT_ENDPOINT,
  DownloadError,
  fetchFileMetadata,
  formatBytes,
  resolveUrl,
  sha256File,
  type DownloadOptions,
  type FileMetadata,
} from './hub-http.js';

export interface DownloadedFile {
  file: string;
  /** The path in the snapshot folder. */
  path: string;
  commit: string;
  /** The blob path ("" when skipped without a HEAD request). */
  blob: string;
  /** Bytes transferred in this call. */
  bytes: number;
  /** Already in the snapshot: nothing was downloaded. */
  skipped: boolean;
}

export interface RepoDownload {
  repo: string;
  commit: string;
  snapshot: string;
  files: DownloadedFile[];
  /** Optional files the hub does not have. */
  absent: string[];
}

/** snapshots/<commit>/<file> -> ../../blobs/<etag> (relative symlink), or a copy where symlinks are refused. */
async function linkSnapshot(blob: string, target: string): Promise<void> {
  await fsp.mkdir(path.dirname(target), { recursive: true });
  await fsp.rm(target, { force: true });
  try {
    await fsp.symlink(path.relative(path.dirname(target), blob), target);
  } catch {
    await fsp.copyFile(blob, target);
  }
}

async function writeRef(repoDir: string, ref: string, commit: string): Promise<void> {
  if (ref === commit) return;
  const file = path.join(repoDir, 'refs', ...ref.split('/'));
  let old: string | undefined;
  try {
    old = fs.readFileSync(file, 'utf8').trim();
  } catch {
    old = undefined;
  }
  if (old === commit) return;
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(`${file}.tmp`, commit);
  await fsp.rename(`${file}.tmp`, file);
}

function snapshotFile(repoDir: string, commit: string, file: string): string {
  return path.join(repoDir, 'snapshots', commit, ...file.split('/'));
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Download one file of `repo` at `revision` into the cache. `ref` (default: revision) is the name recorded in
 * refs/ for the commit. A file already in the snapshot is skipped (without a request when revision is a commit).
 */
export async function downloadFile(
  repo: string,
  revision: string,
  file: string,
  opts: DownloadOptions & { ref?: string } = {},
): Promise<DownloadedFile> {
  const ctx = context(opts);
  const repoDir = hfRepoDir(repo, ctx.cacheDir);
  const progress = new Progress(opts, file);
  if (HEX40.test(revision) && isFile(snapshotFile(repoDir, revision, file))) {
    await writeRef(repoDir, opts.ref ?? revision, revision);
    progress.end(`${file}: already in the cache`);
    return { file, path: snapshotFile(repoDir, revision, file), commit: revision, blob: '', bytes: 0, skipped: true };
  }
  const meta = await fetchFileMetadata(repo, revision, file, opts);
  await writeRef(repoDir, opts.ref ?? revision, meta.commit);
  const target = snapshotFile(repoDir, meta.commit, file);
  const blob = path.join(repoDir, 'blobs', meta.etag);
  if (isFile(target)) {
    progress.end(`${file}: already in the cache`);
    return { file, path: target, commit: meta.commit, blob, bytes: 0, skipped: true };
  }
  let bytes = 0;
  let resumeFrom = 0;
  if (!isFile(blob)) {
    // One writer per blob: the lock file where huggingface_hub puts its own (<cache>/.locks/models--ORG--NAME/
    // <etag>.lock). A second download of the same file waits for the first, then finds the blob in place.
    const lock = path.join(ctx.cacheDir, '.locks', repoFolderName(repo), `${meta.etag}.lock`);
    const release = (await waitLock(lock, {
      onWait: (owner) => progress.note(`${file}: another process (${describeOwner(owner)}) is downloading this file; waiting for it (lock ${lock})`),
    }))!;
    try {
      resumeFrom = fileSize(`${blob}.incomplete`);
      if (!isFile(blob)) bytes = await fetchBlob(meta, blob, ctx, { repo, revision, file }, opts.sha256?.[file], progress);
    } catch (e) {
      progress.abort();
      throw e;
    } finally {
      release();
    }
  }
  await linkSnapshot(blob, target);
  const how =
    bytes === 0
      ? 'blob already cached, linked'
      : `${formatBytes(bytes)} in ${progress.elapsed()}${resumeFrom > 0 ? `, resumed at ${formatBytes(resumeFrom)}` : ''}`;
  progress.end(`${file}: downloaded (${how})`);
  return { file, path: target, commit: meta.commit, blob, bytes, skipped: false };
}

/**
 * Download `files` (required) and `optional` files (skipped when the hub has no such file) of one repo. The commit
 * that the first file resolves to is used for all the others, so one snapshot is consistent.
 */
export async function downloadRepo(
  repo: string,
  revision: string,
  files: readonly string[],
  opts: DownloadOptions & { optional?: readonly string[] } = {},
): Promise<RepoDownload> {
  const ctx = context(opts);
  let rev = revision;
  const done: DownloadedFile[] = [];
  const absent: string[] = [];
  const all = [...files.map((f) => ({ f, required: true })), ...(opts.optional ?? []).map((f) => ({ f, required: false }))];
  for (const { f, required } of all) {
    try {
      const r = await downloadFile(repo, rev, f, { ...opts, ref: revision });
      rev = r.commit;
      done.push(r);
    } catch (e) {
      if (!required && e instanceof DownloadError && e.status === 404) {
        absent.push(f);
        continue;
      }
      throw e;
    }
  }
  if (!HEX40.test(rev)) throw new DownloadError(`nothing was downloaded from ${repo}: no files to resolve revision ${revision}`);
  return { repo, commit: rev, snapshot: path.join(hfRepoDir(repo, ctx.cacheDir), 'snapshots', rev), files: done, absent };
}

/** Download a registry entry's required and optional files (not the entries it uses). */
export function downloadModel(entry: ModelEntry, opts: DownloadOptions = {}): Promise<RepoDownload> {
  return downloadRepo(entry.repo, entry.revision, entry.files, { ...opts, optional: entry.optional, sha256: { ...entry.sha256, ...opts.sha256 } });
}
