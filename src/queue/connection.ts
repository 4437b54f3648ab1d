// The Redis connection behind the job queue (BullMQ): `--queue redis://HOST:PORT[/DB]`. An unreachable server fails in
// seconds with the URL named (no endless reconnect loop before the first contact); once connected, a dropped
// connection is retried by ioredis as usual.
import { Redis } from 'ioredis';
import { RenoError, UsageError } from '../errors.js';

/** The BullMQ queue every `reno` command and worker uses. */
export const QUEUE_NAME = 'reno';

/** The queue could not be reached or used. */
export class QueueError extends RenoError {}

/** The URL without its password, for messages. */
export function showUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** Checks `redis://HOST:PORT[/DB]` (rediss:// for TLS); a UsageError naming the flag otherwise. */
export function parseQueueUrl(url: string, flag = '--queue'): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`${flag} must be redis://HOST:PORT[/DB], found "${url}"`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new UsageError(`${flag} must be redis://HOST:PORT[/DB] (or rediss:// for TLS), found "${showUrl(url)}"`);
  if (!u.hostname) throw new UsageError(`${flag} ${showUrl(url)} names no host (expected redis://HOST:PORT[/DB])`);
  if (u.pathname && u.pathname !== '/' && !/^\/\d+$/.test(u.pathname))
    throw new UsageError(`${flag} ${showUrl(url)}: the database after the port must be a number (redis://HOST:PORT/DB)`);
  return u;
}

/**
 * A connected client for BullMQ (maxRetriesPerRequest: null, as its workers need). The first connection gets
 * `timeoutMs` and no retry: an unreachable server is a QueueError in seconds.
 */
export async function connectQueue(url: string, o: { timeoutMs?: number; flag?: string } = {}): Promise<Redis> {
  parseQueueUrl(url, o.flag);
  const timeoutMs = o.timeoutMs ?? 5000;
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    enableOfflineQueue: true,
  });
  let lastError: NodeJS.ErrnoException | null = null;
  client.on('error', (e) => (lastError = e)); // reported below (first contact) or retried (later)
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs / 1000} s`)), timeoutMs))),
    ]);
  } catch (e) {
    client.disconnect();
    const err = (lastError ?? e) as NodeJS.ErrnoException;
    const why = err.code ?? err.message;
    throw new QueueError(`cannot reach Redis at ${showUrl(url)} (${why}): is redis-server running there and reachable from this machine?`);
  } finally {
    clearTimeout(timer);
  }
  // connected: from now on a dropped connection is retried (every 0.2 s .. 2 s)
  client.options.retryStrategy = (times: number) => Math.min(200 * times, 2000);
  return client;
}
