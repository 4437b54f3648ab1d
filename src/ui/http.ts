// The HTTP pieces of `reno ui`'s server: an error with a status, responses with the safety headers, a JSON body
// read with a size limit, a path kept inside a root, and a number read from a request.
import type * as http from 'node:http';
import * as path from 'node:path';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function send(res: http.ServerResponse, status: number, body: string | Buffer, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
  });
  res.end(body);
}

export function sendJson(res: http.ServerResponse, status: number, v: unknown): void {
  send(res, status, JSON.stringify(v), 'application/json');
}

export async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new HttpError(415, 'send the body as application/json');
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > 1 << 20) throw new HttpError(413, 'request body too large');
    chunks.push(c as Buffer);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new HttpError(400, `the body is not a JSON object (${(e as Error).message})`);
  }
}

/** A file under `root` named by a URL path, or null when it would leave `root`. */
export function inside(root: string, rel: string): string | null {
  let dec: string;
  try {
    dec = decodeURIComponent(rel);
  } catch {
    return null;
  }
  if (dec.includes('\0')) return null;
  const full = path.resolve(root, dec);
  return full === root || full.startsWith(root + path.sep) ? full : null;
}

export function num(v: unknown, what: string, o: { integer?: boolean; min?: number } = {}): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const x = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(x) || (o.integer && !Number.isInteger(x)) || (o.min !== undefined && x < o.min))
    throw new HttpError(
      400,
      `${what} must be ${o.integer ? 'an integer' : 'a number'}${o.min !== undefined ? ` >= ${o.min}` : ''}, found ${JSON.stringify(v)}`,
    );
  return x;
}
