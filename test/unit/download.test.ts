// Downloads against a local fake hub (node:http) that answers the way huggingface.co does: HEAD .../resolve/...
// with X-Repo-Commit; small files with an ETag (git blob sha1); "LFS" files as a redirect to another host (the CDN)
// with X-Linked-Etag (sha256) and X-Linked-Size; Range requests on the CDN.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, beforeEach, test } from 'node:test';
import { modelsDownload } from '../../src/commands/models.js';
import { getModel, parseRegistry } from '../../src/config/models.js';
import { DownloadError, downloadFile, downloadModel } from '../../src/weights/download.js';
import { locateModel } from '../../src/weights/hub.js';
import { ROOT, tmpDir } from '../helpers.js';

const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const BIG = Buffer.alloc(300_000);
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 2654435761) >>> 24;
const FILES: Record<string, { data: Buffer; lfs: boolean }> = {
  'config.json': { data: Buffer.from('{"hidden_size": 4}\n'), lfs: false },
  'model.safetensors': { data: BIG, lfs: true },
  'tokenizer/vocab.json': { data: Buffer.from('{"a": 0}'), lfs: false },
};
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer) => crypto.createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const BIG_SHA = sha256(BIG);

interface Seen {
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  range?: string;
  auth?: string;
}

const state = {
  seen: [] as Seen[],
  cutAfter: null as number | null, // the CDN sends this many bytes of the body, then drops the connection (once)
  ignoreRange: false, // the CDN answers 200 with the whole file to a Range request
  corrupt: false, // the CDN flips one byte
  noCommit: false, // the hub sends no X-Repo-Commit
  slow: false, // the CDN sends the body in 10 pieces, 60 ms apart
};

function sendBody(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer, cdn: boolean): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let start = 0;
  if (m && !(cdn && state.ignoreRange)) {
    start = Number(m[1]);
    if (start >= data.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${data.length}` }).end();
      return;
    }
    res.writeHead(206, { 'Content-Length': data.length - start, 'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}` });
  } else res.writeHead(200, { 'Content-Length': data.length });
  if (req.method === 'HEAD') return void res.end();
  let body = data.subarray(start);
  if (cdn && state.corrupt) {
    body = Buffer.from(body);
    body[body.length >> 1] ^= 0xff;
  }
  if (cdn && state.cutAfter !== null && state.cutAfter > start) {
    const n = state.cutAfter - start;
    state.cutAfter = null;
    res.write(body.subarray(0, n));
    setTimeout(() => res.socket?.destroy(), 50);
    return;
  }
  if (cdn && state.slow) {
    const piece = Math.ceil(body.length / 10);
    const send = (i: number): void => {
      if (i * piece >= body.length) return void res.end();
      res.write(body.subarray(i * piece, (i + 1) * piece));
      setTimeout(() => send(i + 1), 60);
    };
    return send(0);
  }
  res.end(body);
}

let hub: http.Server;
let cdn: http.Server;
let endpoint = '';
let cdnUrl = '';

function listen(s: http.Server): Promise<string> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
}

before(async () => {
  cdn = http.createServer((req, res) => {
    state.seen.push({ server: 'cdn', method: req.method!, url: req.url!, range: req.headers.range, auth: req.headers.authorization });
    if (req.url === `/lfs/${BIG_SHA}`) return sendBody(req, res, BIG, true);
    res.writeHead(404).end();
  });
  hub = http.createServer((req, res) => {
    state.seen.push({ server: 'hub', method: req.method!, url: req.url!, range: req.headers.range, auth: req.headers.authorization });
    const m = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url ?? '');
    const fail = (status: number, code: string) => res.writeHead(status, { 'X-Error-Code': code }).end();
    if (!m) return fail(404, 'RepoNotFound');
    const [repo, rev, file] = [
      `${decodeURIComponent(m[1])}/${decodeURIComponent(m[2])}`,
      decodeURIComponent(m[3]),
      m[4].split('/').map(decodeURIComponent).join('/'),
    ];
    if (repo === 'org/gated' && req.headers.authorization !== 'Bearer hf_secret') return fail(401, 'GatedRepo');
    if (repo !== 'org/tiny' && repo !== 'org/gated') return fail(404, 'RepoNotFound');
    if (rev !== 'main' && rev !== COMMIT) return fail(404, 'RevisionNotFound');
    const f = FILES[file];
    if (!f) return fail(404, 'EntryNotFound');
    if (!state.noCommit) res.setHeader('X-Repo-Commit', COMMIT);
    if (f.lfs) {
      res.writeHead(302, {
        Location: `${cdnUrl}/lfs/${BIG_SHA}`,
        ETag: `"${gitSha1(Buffer.from('pointer'))}"`,
        'X-Linked-Etag': `"${sha256(f.data)}"`,
        'X-Linked-Size': String(f.data.length),
      });
      return void res.end();
    }
    res.setHeader('ETag', `"${gitSha1(f.data)}"`);
    sendBody(req, res, f.data, false);
  });
  endpoint = await listen(hub);
  cdnUrl = await listen(cdn);
});

after(() => {
  for (const s of [hub, cdn]) {
    s.closeAllConnections();
    s.close();
  }
});

beforeEach(() => {
  Object.assign(state, { seen: [], cutAfter: null, ignoreRange: false, corrupt: false, noCommit: false, slow: false });
});

const REG = parseRegistry(
  `models:
  tiny:
    repo: org/tiny
    kind: reward
    description: a tiny fake model
    size: 300 kB
    files: [config.json, model.safetensors, tokenizer/vocab.json]
    optional: [not-there.json]
`,
  'test-registry.yaml',
);
const TINY = getModel('tiny', REG);

function setup() {
  const d = tmpDir('reno-dl');
  const env = { HF_HUB_CACHE: path.join(d, 'hub'), HF_ENDPOINT: endpoint };
  return { env, repoDir: path.join(env.HF_HUB_CACHE, 'models--org--tiny') };
}

function sink(): { stream: Writable; text: () => string } {
  let s = '';
  return { stream: new Writable({ write: (c, _e, cb) => ((s += String(c)), cb()) }), text: () => s };
}

test('a full download writes the exact huggingface_hub cache layout, and locateModel finds it complete', async () => {
  const { env, repoDir } = setup();
  const out = sink();
  const progress = sink();
  const [r] = await modelsDownload(['tiny'], { env, registry: REG, out: out.stream, stream: progress.stream });
  assert.equal(r.commit, COMMIT);
  assert.deepEqual(r.absent, ['not-there.json']);
  assert.equal(fs.readFileSync(path.join(repoDir, 'refs', 'main'), 'utf8'), COMMIT);
  const blobs = fs.readdirSync(path.join(repoDir, 'blobs')).sort();
  const want = Object.values(FILES).map((f) => (f.lfs ? sha256(f.data) : gitSha1(f.data)));
  assert.deepEqual(blobs, [...want].sort());
  const snap = path.join(repoDir, 'snapshots', COMMIT);
  assert.equal(fs.readlinkSync(path.join(snap, 'config.json')), `../../blobs/${gitSha1(FILES['config.json'].data)}`);
  assert.equal(fs.readlinkSync(path.join(snap, 'model.safetensors')), `../../blobs/${BIG_SHA}`);
  assert.equal(fs.readlinkSync(path.join(snap, 'tokenizer', 'vocab.json')), `../../../blobs/${gitSha1(FILES['tokenizer/vocab.json'].data)}`);
  for (const [f, { data }] of Object.entries(FILES)) assert.ok(fs.readFileSync(path.join(snap, f)).equals(data), f);
  assert.deepEqual(locateModel(TINY, { env }), { dir: snap, where: 'hf-cache', revision: COMMIT, complete: true, missing: [] });
  // The LFS HEAD is not followed to the CDN; the GET is; later files use the resolved commit.
  assert.ok(!state.seen.some((s) => s.server === 'cdn' && s.method === 'HEAD'));
  assert.ok(state.seen.some((s) => s.server === 'hub' && s.url === `/org/tiny/resolve/${COMMIT}/tokenizer/vocab.json`));
  assert.match(out.text(), new RegExp(`tiny: org/tiny @ ${COMMIT.slice(0, 12)} complete`));
  assert.match(progress.text(), /model\.safetensors: downloaded \(300\.0 kB in/);
  // A second run downloads nothing.
  state.seen = [];
  const [again] = await modelsDownload(['tiny'], { env, registry: REG, out: out.stream, quiet: true });
  assert.ok(again.files.every((f) => f.skipped));
  assert.ok(!state.seen.some((s) => s.method === 'GET'), JSON.stringify(state.seen));
});

test('an interrupted download leaves only .incomplete; the next run resumes with a Range request', async () => {
  const { env, repoDir } = setup();
  state.cutAfter = 100_000;
  await assert.rejects(
    downloadModel(TINY, { env, quiet: true }),
    (e: Error) => e instanceof DownloadError && /broke off at .*run the same command again to resume/.test(e.message),
  );
  const blobs = path.join(repoDir, 'blobs');
  assert.ok(!fs.existsSync(path.join(blobs, BIG_SHA)), 'no blob under the final name');
  assert.equal(fs.statSync(path.join(blobs, `${BIG_SHA}.incomplete`)).size, 100_000);
  const loc = locateModel(TINY, { env });
  assert.equal(loc?.complete, false);
  assert.deepEqual(loc?.missing, ['model.safetensors', 'tokenizer/vocab.json']);

  state.seen = [];
  const r = await downloadModel(TINY, { env, quiet: true });
  const get = state.seen.find((s) => s.server === 'cdn' && s.method === 'GET');
  assert.equal(get?.range, 'bytes=100000-');
  assert.equal(r.files.find((f) => f.file === 'model.safetensors')?.bytes, BIG.length - 100_000);
  assert.ok(fs.readFileSync(path.join(blobs, BIG_SHA)).equals(BIG));
  assert.ok(!fs.existsSync(path.join(blobs, `${BIG_SHA}.incomplete`)));
  assert.equal(locateModel(TINY, { env })?.complete, true);
});

test('two downloads of one file at once: the second waits on the lock huggingface_hub uses, the partial file is not corrupted', async () => {
  const { env, repoDir } = setup();
  state.cutAfter = 100_000; // a partial file both will want to resume
  await assert.rejects(downloadFile('org/tiny', 'main', 'model.safetensors', { env, quiet: true }), DownloadError);
  state.slow = true;
  const [a, b] = [sink(), sink()];
  const [ra, rb] = await Promise.all([
    downloadFile('org/tiny', 'main', 'model.safetensors', { env, stream: a.stream }),
    downloadFile('org/tiny', 'main', 'model.safetensors', { env, stream: b.stream }),
  ]);
  assert.ok(fs.readFileSync(path.join(repoDir, 'blobs', BIG_SHA)).equals(BIG));
  assert.ok(fs.readFileSync(ra.path).equals(BIG) && fs.readFileSync(rb.path).equals(BIG));
  assert.equal(ra.bytes + rb.bytes, BIG.length - 100_000, 'the rest was transferred once');
  const lock = path.join(env.HF_HUB_CACHE, '.locks', 'models--org--tiny', `${BIG_SHA}.lock`);
  const waited = a.text() + b.text();
  assert.match(waited, /model\.safetensors: another process \(pid \d+ on .+ since .+\) is downloading this file; waiting for it/);
  assert.ok(waited.includes(`(lock ${lock})`), waited);
  assert.ok(!fs.existsSync(lock), 'the lock is released');
  assert.equal(state.seen.filter((s) => s.server === 'cdn' && s.method === 'GET').length, 2, 'the cut one and one resume');
});

test('two processes downloading one file: the one that comes second waits for the first, the blob is whole', async () => {
  const { env, repoDir } = setup();
  state.slow = true;
  const script = `const { downloadFile } = await import(${JSON.stringify(path.join(ROOT, 'src/weights/download.ts'))});
await downloadFile('org/tiny', 'main', 'model.safetensors', { env: ${JSON.stringify(env)} });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let childErr = '';
  child.stderr.on('data', (x) => (childErr += x));
  const code = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  // start ours once the child has taken the lock
  const lockDir = path.join(env.HF_HUB_CACHE, '.locks', 'models--org--tiny');
  const deadline = Date.now() + 60_000;
  while (!(fs.existsSync(lockDir) && fs.readdirSync(lockDir).length) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const mine = sink();
  const r = await downloadFile('org/tiny', 'main', 'model.safetensors', { env, stream: mine.stream });
  assert.equal(await code, 0, childErr);
  assert.match(mine.text(), new RegExp(`model\\.safetensors: another process \\(pid ${child.pid} on `));
  assert.equal(r.bytes, 0, 'the blob came from the other process');
  assert.ok(fs.readFileSync(path.join(repoDir, 'blobs', BIG_SHA)).equals(BIG));
});

test('a download lock left by a dead process is taken over', async () => {
  const { env, repoDir } = setup();
  const lock = path.join(env.HF_HUB_CACHE, '.locks', 'models--org--tiny', `${BIG_SHA}.lock`);
  const dead = spawn(process.execPath, ['-e', '0']);
  const pid = await new Promise<number>((r) => dead.on('exit', () => r(dead.pid!)));
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  fs.writeFileSync(lock, JSON.stringify({ pid, host: os.hostname(), since: new Date().toISOString() }));
  await downloadFile('org/tiny', 'main', 'model.safetensors', { env, quiet: true });
  assert.ok(fs.readFileSync(path.join(repoDir, 'blobs', BIG_SHA)).equals(BIG));
  assert.ok(!fs.existsSync(lock));
});

test('a server that answers 200 to a Range request: the download restarts from zero', async () => {
  const { env, repoDir } = setup();
  state.cutAfter = 50_000;
  await assert.rejects(downloadModel(TINY, { env, quiet: true }), DownloadError);
  state.ignoreRange = true;
  await downloadModel(TINY, { env, quiet: true });
  assert.equal(state.seen.filter((s) => s.server === 'cdn' && s.range === 'bytes=50000-').length, 1);
  assert.ok(fs.readFileSync(path.join(repoDir, 'blobs', BIG_SHA)).equals(BIG));
});

test('a corrupted body (wrong sha256) is rejected and never renamed into place', async () => {
  const { env, repoDir } = setup();
  state.corrupt = true;
  await assert.rejects(
    downloadModel(TINY, { env, quiet: true }),
    (e: Error) =>
      e instanceof DownloadError &&
      new RegExp(`model\\.safetensors from org/tiny: sha256 [0-9a-f]{64} does not match the expected ${BIG_SHA}`).test(e.message),
  );
  const blobs = fs.readdirSync(path.join(repoDir, 'blobs'));
  assert.ok(!blobs.some((b) => b.startsWith(BIG_SHA)), blobs.join(','));
  assert.ok(!fs.existsSync(path.join(repoDir, 'snapshots', COMMIT, 'model.safetensors')));
  assert.deepEqual(locateModel(TINY, { env })?.missing, ['model.safetensors', 'tokenizer/vocab.json']);
  // A pinned sha256 (registry) that the file does not match is rejected the same way.
  state.corrupt = false;
  const fresh = setup();
  await assert.rejects(
    downloadFile('org/tiny', 'main', 'config.json', { env: fresh.env, quiet: true, sha256: { 'config.json': 'f'.repeat(64) } }),
    /config\.json from org\/tiny: sha256 .* does not match/,
  );
});

test('HF_TOKEN goes to the hub as a bearer header, never to the CDN; without it a gated repo says so', async () => {
  const { env } = setup();
  await downloadFile('org/gated', 'main', 'model.safetensors', { env: { ...env, HF_TOKEN: 'hf_secret' }, quiet: true });
  const hubReqs = state.seen.filter((s) => s.server === 'hub');
  assert.ok(hubReqs.length > 0 && hubReqs.every((s) => s.auth === 'Bearer hf_secret'));
  assert.ok(state.seen.filter((s) => s.server === 'cdn').every((s) => s.auth === undefined));
  await assert.rejects(
    downloadFile('org/gated', 'main', 'config.json', { env, quiet: true }),
    (e: Error) => e instanceof DownloadError && e.status === 401 && /org\/gated refused .*set HF_TOKEN/.test(e.message),
  );
});

test('404 errors name the repo and the file; a missing commit header needs a commit revision', async () => {
  const { env } = setup();
  await assert.rejects(
    downloadFile('org/tiny', 'main', 'missing.bin', { env, quiet: true }),
    (e: Error) =>
      e instanceof DownloadError && e.status === 404 && e.message.startsWith('missing.bin in org/tiny at revision main not found (HTTP 404)'),
  );
  await assert.rejects(downloadFile('org/nothing', 'main', 'config.json', { env, quiet: true }), /repository org\/nothing not found/);
  await assert.rejects(downloadFile('org/tiny', 'v9', 'config.json', { env, quiet: true }), /revision v9 not found in org\/tiny/);
  state.noCommit = true;
  await assert.rejects(
    downloadFile('org/tiny', 'main', 'config.json', { env, quiet: true }),
    /no X-Repo-Commit header .*"main" is not a commit hash/,
  );
  const r = await downloadFile('org/tiny', COMMIT, 'config.json', { env, quiet: true });
  assert.equal(r.commit, COMMIT);
});
