// `reno ui`'s HTTP server (Node's http, no framework): one page (src/ui/page.ts) and a small JSON API under
// /<token>/, where <token> is random (crypto.randomBytes) and printed in the URL. Every request is checked:
//   - the token (403 without it, compared in constant time),
//   - the Host header (a loopback name or the --host given: no DNS rebinding),
//   - cross-origin requests are refused (Origin must be this server; Sec-Fetch-Site same-origin or none), and
//     POST bodies must be JSON (a cross-site form cannot send one without a refused preflight).
// Jobs (a generation, a pair to rate) run one at a time through src/ui/jobs.ts; progress goes out as server-sent events.
// The pairs to rate are made in src/ui/pairs.ts, the HTTP helpers are src/ui/http.ts.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodePng } from '../image/png.js';
import { generateCommand, generateConfig, type GenerateOptions } from '../commands/generate.js';
import { resolveConfig } from '../config/run-config.js';
import { RenoError } from '../errors.js';
import { HistoryStore } from './history-store.js';
import { HttpError, inside, num, readJson, send, sendJson } from './http.js';
import { JobQueue, type Job } from './jobs.js';
import { pairMaker } from './pairs.js';
import { listRuns } from './runs.js';
import { uiPage } from './page.js';

export interface UiServerOptions {
  host: string;
  port: number;
  history: string;
  outputs: string;
  /** prompts offered one after the other on the Rate page */
  prompts?: string[];
  /** a folder of images: pairs to rate can be drawn from it */
  images?: string;
  preset?: string;
  modelDir?: string;
  modelsDir?: string;
  backend?: string;
  /** for tests; random otherwise */
  token?: string;
  log: (line: string) => void;
}

export interface UiServer {
  url: string;
  port: number;
  token: string;
  queue: JobQueue;
  server: http.Server;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.csv': 'text/csv; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.yaml': 'text/yaml; charset=utf-8',
  '.jsonl': 'application/jsonl',
  '.svg': 'image/svg+xml',
};
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export async function startUiServer(o: UiServerOptions): Promise<UiServer> {
  const token = o.token ?? crypto.randomBytes(18).toString('base64url');
  const outputs = path.resolve(o.outputs);
  const history = new HistoryStore(o.history);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'reno-ui-'));
  const clients = new Set<http.ServerResponse>();
  const broadcast = (event: string, data: unknown) => {
    const msg = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of clients) c.write(msg);
  };
  const queue = new JobQueue(broadcast, o.log);
  const defaults = resolveConfig({ overrides: { prompt: 'x' } });
  const rewardNames = Object.keys(defaults.weights);
  let promptIndex = 0;
  const models = { preset: o.preset, modelDir: o.modelDir, modelsDir: o.modelsDir, backend: o.backend };
  const { pairs, newPair, pairView } = pairMaker({ outputs, images: o.images, scratch, models, rewardNames, queue });

  const state = () => ({
    history: history.state(),
    outputs,
    queue: queue.list(),
    preset: o.preset ?? null,
    defaults: { seed: defaults.seed, steps: defaults.steps, weights: defaults.weights, guidance: defaults.guidance },
    sources: ['generate', 'runs', ...(o.images ? ['images'] : [])],
    prompts: o.prompts?.length ?? 0,
  });

  // ---- generation ----------------------------------------------------------------------------------------------
  function generateOptions(body: Record<string, unknown>): GenerateOptions {
    const prompt = typeof body.prompt === 'string' ? body.prompt.trim() : '';
    if (!prompt) throw new HttpError(400, 'the prompt is empty: type what the image should show');
    const weights: Record<string, number> = {};
    if (body.weights !== undefined) {
      if (!body.weights || typeof body.weights !== 'object') throw new HttpError(400, 'weights must be an object {reward: weight}');
      for (const [k, v] of Object.entries(body.weights as Record<string, unknown>)) {
        if (!rewardNames.includes(k)) throw new HttpError(400, `weights.${k}: unknown reward (known: ${rewardNames.join(', ')})`);
        weights[k] = num(v, `weights.${k}`, { min: 0 }) ?? 0;
      }
    }
    const personal = body.personal === true;
    const guidance = body.guidance === undefined || body.guidance === '' ? undefined : String(body.guidance);
    if (guidance !== undefined && guidance !== 'like' && guidance !== 'dislike')
      throw new HttpError(400, `guidance must be like or dislike, found ${JSON.stringify(guidance)}`);
    if (personal) {
      const h = history.state();
      if (h.error) throw new HttpError(409, `personal mode reads the history, which cannot be used: ${h.error}`);
      if (h.pairs === 0) throw new HttpError(409, `personal mode needs at least one rated pair in ${h.file}: rate some pairs first`);
    }
    const size = body.size === undefined || body.size === '' || body.size === null ? undefined : String(body.size);
    const g: GenerateOptions = {
      prompt,
      seed: num(body.seed, 'seed', { integer: true, min: 0 }),
      steps: num(body.steps, 'steps', { integer: true, min: 1 }),
      size,
      noOptimize: body.noOptimize === true,
      overrides: Object.keys(weights).length ? { weights } : undefined,
      user: personal ? history.file : undefined,
      guidance: personal ? (guidance as 'like' | 'dislike' | undefined) : undefined,
      ...models,
      out: outputs,
      quiet: true,
    };
    try {
      generateConfig({ ...g, log: () => {} }); // a bad value fails now, as a message on the form, not in the queue
    } catch (e) {
      if (e instanceof RenoError) throw new HttpError(400, e.message);
      throw e;
    }
    return g;
  }

  async function runJob(g: GenerateOptions, job: Job): Promise<unknown> {
    const cfg = generateConfig({ ...g, log: () => {} });
    const total = cfg.optimize ? cfg.steps : 1;
    let first = 0;
    const r = await generateCommand({
      ...g,
      log: (l) => o.log(`[${job.id}] ${l}`),
      stdout: () => {},
      shouldStop: () => job.stopRequested,
      onStep: async (dir, rec, image) => {
        job.dir = dir;
        const now = Date.now();
        if (rec.step === 0) first = now;
        const done = rec.step + 1;
        // the first step includes warm-up: the rate comes from the steps after it when there are some
        const per = rec.step > 0 ? (now - first) / rec.step : now - (job.started ?? now);
        if (rec.best) {
          job.bestPng = await encodePng(image);
          broadcast('best', { id: job.id, step: rec.step, url: `jobs/${job.id}/best.png?step=${rec.step}` });
        }
        job.progress = {
          step: done,
          total,
          loss: rec.total,
          rewards: rec.rewards,
          best: rec.best,
          bestStep: rec.best ? rec.step : (job.progress?.bestStep ?? null),
          eta_s: Math.max(0, ((total - done) * per) / 1000),
        };
        broadcast('step', { id: job.id, ...job.progress });
      },
    });
    job.dir = r.dir;
    return { dir: path.basename(r.dir), stopped: r.result.stopped?.message ?? null };
  }

  // ---- routing -------------------------------------------------------------------------------------------------
  const tokenBuf = Buffer.from(token);
  let boundPort = o.port;
  const allowedHosts = () => new Set([...[...LOOPBACK, o.host].map((h) => `${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}:${boundPort}`)]);

  function check(req: http.IncomingMessage): string {
    const host = req.headers.host ?? '';
    const wildcard = o.host === '0.0.0.0' || o.host === '::';
    if (!wildcard && !allowedHosts().has(host)) throw new HttpError(403, `forbidden: unexpected Host ${JSON.stringify(host)}`);
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${host}`) throw new HttpError(403, `forbidden: cross-origin request from ${origin}`);
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none')
      throw new HttpError(403, `forbidden: cross-site request (Sec-Fetch-Site: ${site})`);
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/([^/]+)(\/.*)?$/.exec(url.pathname);
    const given = Buffer.from(m?.[1] ?? '');
    if (!m || given.length !== tokenBuf.length || !crypto.timingSafeEqual(given, tokenBuf))
      throw new HttpError(403, 'forbidden: open the URL reno ui printed (it holds the access token)');
    return m[2] ?? '';
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const rest = check(req);
    const method = req.method ?? 'GET';
    if (rest === '') {
      res.writeHead(302, { location: `/${token}/` });
      res.end();
      return;
    }
    if (method === 'GET' && rest === '/') {
      // nothing from elsewhere: no external script, style, image or connection; not framed by another page
      res.setHeader(
        'content-security-policy',
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      );
      return send(res, 200, uiPage(), 'text/html; charset=utf-8');
    }
    if (method === 'GET' && rest === '/api/state') return sendJson(res, 200, state());
    if (method === 'GET' && rest === '/api/runs') return sendJson(res, 200, listRuns(outputs));
    if (method === 'GET' && rest === '/api/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(`event: queue\ndata: ${JSON.stringify(queue.list())}\n\n`);
      clients.add(res);
      const ping = setInterval(() => res.write(': ping\n\n'), 15000);
      const gone = () => {
        clearInterval(ping);
        clients.delete(res);
      };
      req.on('close', gone);
      res.on('error', gone);
      return;
    }
    if (method === 'GET' && rest === '/api/next-prompt') {
      const p = o.prompts?.length ? o.prompts[promptIndex++ % o.prompts.length] : '';
      return sendJson(res, 200, { prompt: p });
    }
    let m: RegExpExecArray | null;
    if (method === 'GET' && (m = /^\/pairs\/(\w+)\/(left|right)$/.exec(rest))) {
      const p = pairs.get(m[1]);
      if (!p) throw new HttpError(404, 'no such pair');
      const f = m[2] === 'left' ? p.left : p.right;
      return send(res, 200, fs.readFileSync(f), TYPES[path.extname(f).toLowerCase()] ?? 'application/octet-stream');
    }
    if (method === 'GET' && (m = /^\/jobs\/(\w+)\/best\.png$/.exec(rest))) {
      const j = queue.get(m[1]);
      if (!j?.bestPng) throw new HttpError(404, 'no image yet');
      return send(res, 200, j.bestPng, 'image/png');
    }
    if (method === 'GET' && rest.startsWith('/runs/')) {
      const f = inside(outputs, rest.slice('/runs/'.length));
      if (!f || !fs.existsSync(f) || !fs.statSync(f).isFile()) throw new HttpError(404, 'not found');
      return send(res, 200, fs.readFileSync(f), TYPES[path.extname(f).toLowerCase()] ?? 'application/octet-stream');
    }
    if (method !== 'POST') throw new HttpError(404, 'not found');
    const body = await readJson(req);
    if (rest === '/api/pair') return sendJson(res, 200, pairView(await newPair(body)));
    if (rest === '/api/choice') {
      const p = pairs.get(String(body.pair));
      if (!p) throw new HttpError(404, 'no such pair (the server was restarted?): ask for a new one');
      const choice = String(body.choice);
      if (choice !== 'left' && choice !== 'right' && choice !== 'skip')
        throw new HttpError(400, `choice must be left, right or skip, found ${JSON.stringify(body.choice)}`);
      pairs.delete(p.id);
      if (choice === 'skip') return sendJson(res, 200, history.state());
      const h = history.state();
      if (h.error) throw new HttpError(409, h.error);
      const [liked, disliked] = choice === 'left' ? [p.left, p.right] : [p.right, p.left];
      return sendJson(res, 200, history.append(p.prompt, liked, disliked));
    }
    if (rest === '/api/undo') return sendJson(res, 200, history.undo());
    if (rest === '/api/generate') {
      const g = generateOptions(body);
      const { job } = queue.add('generate', g.prompt ?? '', (j) => runJob(g, j));
      return sendJson(res, 200, queue.view(job));
    }
    if (rest === '/api/stop') {
      const j = queue.stop(String(body.id));
      if (!j) throw new HttpError(404, `no job ${JSON.stringify(body.id)}`);
      return sendJson(res, 200, queue.view(j));
    }
    throw new HttpError(404, 'not found');
  }

  const server = http.createServer((req, res) => {
    route(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : e instanceof RenoError ? 409 : 500;
      if (status === 500)
        o.log(`reno: ui: ${req.method} ${req.url?.replace(token, '<token>')}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      if (res.headersSent) res.end();
      else sendJson(res, status, { error: e instanceof Error ? e.message : String(e) });
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      const where = `${o.host}:${o.port}`;
      if (e.code === 'EADDRINUSE')
        reject(
          new RenoError(
            `port ${o.port} on ${o.host} is already in use (another reno ui?): choose another with --port, or --port 0 for any free port`,
          ),
        );
      else if (e.code === 'EACCES')
        reject(new RenoError(`cannot listen on ${where}: permission denied (ports below 1024 need privileges): choose another --port`));
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND')
        reject(new RenoError(`cannot listen on ${where}: --host ${o.host} is not an address of this machine`));
      else reject(new RenoError(`cannot listen on ${where}: ${e.message}`));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(o.port, o.host);
  });
  boundPort = (server.address() as { port: number }).port;
  const hostInUrl = o.host.includes(':') ? `[${o.host}]` : o.host;
  const url = `http://${hostInUrl}:${boundPort}/${token}/`;

  let closed: Promise<void> | null = null;
  return {
    url,
    port: boundPort,
    token,
    queue,
    server,
    close() {
      closed ??= (async () => {
        await queue.drain(); // a running generation stops after its step and keeps its folder (Ctrl-C semantics)
        for (const c of clients) c.end();
        clients.clear();
        const shut = new Promise<void>((r) => server.close(() => r()));
        server.closeAllConnections();
        await shut;
        fs.rmSync(scratch, { recursive: true, force: true });
      })();
      return closed;
    },
  };
}
