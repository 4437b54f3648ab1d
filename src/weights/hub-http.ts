// The HTTP side of a hub download, as huggingface_hub's file_download.py: HEAD {endpoint}/{repo}/resolve/{revision}/
// {path} without following absolute redirects; X-Repo-Commit gives the commit, X-Linked-Etag / X-Linked-Size (LFS
// files, on the redirect itself) else ETag / Content-Length give the blob name and size. Then GET, following
// redirects (the bearer token is dropped when the host changes). Bytes go to blobs/<etag>.incomplete, resumed with
// `Range: bytes=N-`; only after the size (and, for LFS, the sha256 in the etag) check out is it renamed into place.
// The cache layout and the lock around a blob's download are src/weights/download.ts.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import cliProgress from 'cli-progress';
import { RenoError } from '../errors.js';
import { hfCacheDir } from './hub.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** A failed download; `status` is the HTTP status when the server answered. */
export class DownloadError extends RenoError {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface DownloadOptions {
  /** Environment for HF_ENDPOINT, HF_TOKEN and the cache location (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The hub cache folder (default hfCacheDir(env)). */
  cacheDir?: string;
  /** Default $HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Bearer token (default $HF_TOKEN). */
  token?: string;
  /** No progress output at all. */
  quiet?: boolean;
  /** Where progress goes (default process.stderr); bars only when it is a TTY, else one line per file. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Give up when the connection is idle this long (default 60 s). */
  timeoutMs?: number;
  /** Pinned sha256 per file path, checked in addition to the LFS etag. */
  sha256?: Record<string, string>;
}

export interface FileMetadata {
  commit: string;
  etag: string;
  /** Bytes, when the server said. */
  size: number | null;
  /** Where to GET the bytes (the redirect target for LFS files). */
  location: string;
}

export const HEX40 = /^[0-9a-f]{40}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface Ctx {
  endpoint: string;
  token?: string;
  cacheDir: string;
  timeoutMs: number;
}

export function context(opts: DownloadOptions): Ctx {
  const env = opts.env ?? process.env;
  const endpoint = (opts.endpoint ?? env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const token = opts.token ?? env.HF_TOKEN;
  return { endpoint, ...(token ? { token } : {}), cacheDir: opts.cacheDir ?? hfCacheDir(env), timeoutMs: opts.timeoutMs ?? 60_000 };
}

/** {endpoint}/{repo}/resolve/{revision}/{path}, each part percent-encoded as huggingface_hub's hf_hub_url does. */
export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');
  return `${endpoint.replace(/\/+$/, '')}/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(file)}`;
}

function request(method: string, url: URL, headers: Record<string, string>, timeoutMs: number): Promise<http.IncomingMessage> {
  const mod = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : null;
  if (!mod) return Promise.reject(new DownloadError(`unsupported URL ${url.href} (http or https only)`));
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, headers }, resolve);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no data for ${Math.round(timeoutMs / 1000)} s`)));
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(new DownloadError(`cannot reach ${url.origin} (${e.code ?? e.message}): check the network, or HF_ENDPOINT`)),
    );
    req.end();
  });
}

function header(res: http.IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function normalizeEtag(v: string | undefined): string | undefined {
  return v?.replace(/^W\//, '').replace(/^"+|"+$/g, '') || undefined;
}

function statusError(res: http.IncomingMessage, what: { repo: string; revision: string; file: string; url: string; token?: string }): DownloadError {
  const status = res.statusCode ?? 0;
  const code = header(res, 'x-error-code');
  const where = `${what.file} in ${what.repo} at revision ${what.revision}`;
  if (status === 401 || status === 403 || code === 'GatedRepo')
    return new DownloadError(
      `access to ${what.repo} refused (HTTP ${status}${code ? `, ${code}` : ''}) for ${what.file}: ` +
        (what.token
          ? 'HF_TOKEN was sent but refused; check that it can read this repo and that you accepted its terms on the hub'
          : 'the repo is gated or private: accept its terms on the hub and set HF_TOKEN'),
      status,
    );
  if (status === 404) {
    if (code === 'RepoNotFound')
      return new DownloadError(`repository ${what.repo} not found (HTTP 404; private repos need HF_TOKEN): ${what.url}`, status);
    if (code === 'RevisionNotFound') return new DownloadError(`revision ${what.revision} not found in ${what.repo} (HTTP 404): ${what.url}`, status);
    return new DownloadError(`${where} not found (HTTP 404): ${what.url}`, status);
  }
  return new DownloadError(`downloading ${where} failed: HTTP ${status} ${res.statusMessage ?? ''} from ${what.url}`.trim(), status);
}

/** HEAD the resolve URL: commit, etag, size and download location of one file. */
export async function fetchFileMetadata(repo: string, revision: string, file: string, opts: DownloadOptions = {}): Promise<FileMetadata> {
  const ctx = context(opts);
  const first = resolveUrl(ctx.endpoint, repo, revision, file);
  let url = new URL(first);
  const headers: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': 'reno' };
  if (ctx.token) headers.Authorization = `Bearer ${ctx.token}`;
  for (let hop = 0; ; hop++) {
    const res = await request('HEAD', url, headers, ctx.timeoutMs);
    res.resume();
    const status = res.statusCode ?? 0;
    const loc = header(res, 'location');
    // Like huggingface_hub: follow redirects on the same host (renamed repos); an absolute redirect elsewhere (the
    // LFS CDN) is not followed: the metadata is on the redirect response itself.
    if (status >= 300 && status < 400 && loc) {
      const next = new URL(loc, url);
      if (next.origin === url.origin && hop < 10 && !header(res, 'x-linked-etag')) {
        url = next;
        continue;
      }
    } else if (status < 200 || status >= 300) throw statusError(res, { repo, revision, file, url: first, token: ctx.token });
    let commit = header(res, 'x-repo-commit');
    if (!commit) {
      if (!HEX40.test(revision))
        throw new DownloadError(
          `${ctx.endpoint} gave no X-Repo-Commit header for ${file} in ${repo}, and revision "${revision}" is not a commit hash: cannot place it in the cache`,
        );
      commit = revision;
    }
    if (!HEX40.test(commit)) throw new DownloadError(`${ctx.endpoint} gave a bad X-Repo-Commit ${JSON.stringify(commit)} for ${repo}`);
    const etag = normalizeEtag(header(res, 'x-linked-etag') ?? header(res, 'etag'));
    if (!etag || !SAFE_NAME.test(etag))
      throw new DownloadError(`${ctx.endpoint} gave no usable ETag for ${file} in ${repo} (${JSON.stringify(etag)})`);
    const sizeText = header(res, 'x-linked-size') ?? header(res, 'content-length');
    const size = sizeText !== undefined && /^\d+$/.test(sizeText) ? Number(sizeText) : null;
    const location = status >= 300 && status < 400 && loc ? new URL(loc, url).href : url.href;
    return { commit, etag, size, location };
  }
}

/** GET following redirects; Range from `start`; the token only goes to the endpoint's own host. */
async function get(location: string, start: number, ctx: Ctx, what: { repo: string; revision: string; file: string }): Promise<http.IncomingMessage> {
  let url = new URL(location);
  const endpointOrigin = new URL(ctx.endpoint).origin;
  for (let hop = 0; hop <= 10; hop++) {
    const headers: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': 'reno' };
    if (ctx.token && url.origin === endpointOrigin) headers.Authorization = `Bearer ${ctx.token}`;
    if (start > 0) headers.Range = `bytes=${start}-`;
    const res = await request('GET', url, headers, ctx.timeoutMs);
    const status = res.statusCode ?? 0;
    const loc = header(res, 'location');
    if (status >= 300 && status < 400 && loc) {
      res.resume();
      url = new URL(loc, url);
      continue;
    }
    if (status === 200 || status === 206 || status === 416) return res;
    res.resume();
    throw statusError(res, { ...what, url: location, token: ctx.token });
  }
  throw new DownloadError(`too many redirects while downloading ${what.file} from ${what.repo}`);
}

export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function fileSize(p: string): number {
  try {
    return fs.statSync(p).size;
  } catch {
    return 0;
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** One bar per file on a TTY, else one line per file when it ends; nothing when quiet. */
export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private t0 = Date.now();
  private base = 0;
  constructor(
    private readonly opts: DownloadOptions,
    private readonly label: string,
  ) {}
  private get out() {
    return this.opts.stream ?? process.stderr;
  }
  start(total: number | null, from: number): void {
    this.t0 = Date.now();
    this.base = from;
    if (this.opts.quiet || !this.out.isTTY) return;
    this.bar = new cliProgress.SingleBar({
      stream: this.out,
      format: `${this.label} [{bar}] {percentage}% | {done}/{size} | {speed} | ETA {eta_formatted}`,
      hideCursor: false, // a hidden cursor would stay hidden if the process is killed mid-download
      barsize: 30,
    });
    this.bar.start(total ?? 0, from, { done: formatBytes(from), size: total === null ? '?' : formatBytes(total), speed: '-' });
  }
  update(value: number): void {
    if (!this.bar) return;
    const s = (Date.now() - this.t0) / 1000;
    this.bar.update(value, { done: formatBytes(value), speed: s > 0 ? `${formatBytes((value - this.base) / s)}/s` : '-' });
  }
  /** Stop the bar without a summary (the error says what happened). */
  abort(): void {
    this.bar?.stop();
    this.bar = null;
  }
  /** A line of its own (not a bar), unless quiet. */
  note(line: string): void {
    if (!this.opts.quiet) this.out.write(`${line}\n`);
  }
  end(line: string): void {
    if (this.bar) this.bar.stop();
    this.bar = null;
    if (!this.opts.quiet) this.out.write(`${line}\n`);
  }
  elapsed(): string {
    return `${((Date.now() - this.t0) / 1000).toFixed(1)} s`;
  }
}

/** Bytes into blobs/<etag>.incomplete (resumed), checked, then renamed to blobs/<etag>. Returns bytes transferred. */
export async function fetchBlob(
  meta: FileMetadata,
  blob: string,
  ctx: Ctx,
  what: { repo: string; revision: string; file: string },
  pinned: string | undefined,
  progress: Progress,
): Promise<number> {
  const incomplete = `${blob}.incomplete`;
  await fsp.mkdir(path.dirname(blob), { recursive: true });
  let start = fileSize(incomplete);
  if (meta.size !== null && start > meta.size) {
    await fsp.rm(incomplete, { force: true });
    start = 0;
  }
  let transferred = 0;
  let res = await get(meta.location, start, ctx, what);
  if (res.statusCode === 416) {
    res.resume();
    // Nothing left to send: complete if the size matches, else start over.
    if (meta.size === null || start !== meta.size) {
      await fsp.rm(incomplete, { force: true });
      start = 0;
      res = await get(meta.location, 0, ctx, what);
    }
  }
  if (res.statusCode !== 416) {
    const append = start > 0 && res.statusCode === 206;
    if (res.statusCode === 206 && !(header(res, 'content-range') ?? '').startsWith(`bytes ${start}-`)) {
      res.destroy();
      await fsp.rm(incomplete, { force: true });
      throw new DownloadError(
        `the server sent ${what.file} from ${what.repo} with the wrong byte range (${header(res, 'content-range')}, asked bytes=${start}-); the partial file was deleted, run again`,
      );
    }
    if (!append) start = 0; // 200 to a Range request: the whole file comes again
    progress.start(meta.size, start);
    const fh = await fsp.open(incomplete, append ? 'a' : 'w');
    let written = start;
    try {
      for await (const chunk of res) {
        await fh.write(chunk as Buffer);
        written += (chunk as Buffer).length;
        transferred += (chunk as Buffer).length;
        progress.update(written);
      }
    } catch (e) {
      throw new DownloadError(
        `download of ${what.file} from ${what.repo} broke off at ${formatBytes(written)}${meta.size !== null ? ` of ${formatBytes(meta.size)}` : ''} (${(e as Error).message}); run the same command again to resume`,
      );
    } finally {
      await fh.close();
      progress.update(written);
    }
  }
  const got = fileSize(incomplete);
  if (meta.size !== null && got !== meta.size) {
    if (got > meta.size) await fsp.rm(incomplete, { force: true });
    throw new DownloadError(
      `download of ${what.file} from ${what.repo} has ${got} bytes, expected ${meta.size}${got < meta.size ? '; run the same command again to resume' : ''}`,
    );
  }
  for (const want of [HEX64.test(meta.etag) ? meta.etag : undefined, pinned]) {
    if (!want) continue;
    const have = await sha256File(incomplete);
    if (have !== want) {
      await fsp.rm(incomplete, { force: true });
      throw new DownloadError(`${what.file} from ${what.repo}: sha256 ${have} does not match the expected ${want}; the corrupt download was deleted`);
    }
  }
  await fsp.rename(incomplete, blob);
  return transferred;
}
