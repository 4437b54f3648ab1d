// Lock files between local processes: a file created with O_EXCL ('wx') that holds its owner (pid, host, start time).
// A sweep claims each cell with one (two `reno sweep` on one folder share the cells), a download locks the blob it
// writes. A lock whose owner is a dead pid on this host, or an empty / unreadable lock file older than STALE_EMPTY_MS
// (a crash between create and write, or a lock file another tool leaves behind), is stale and taken over. Take-over
// itself is serialised by a second O_EXCL file (<lock>.takeover), so two processes never both take the same lock.
// A lock held on another host cannot be checked: it is respected until its owner removes it (or a user deletes it).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the lock was taken */
  since: string;
}

export type LockAttempt = { ok: true; release: () => void } | { ok: false; owner: LockOwner | null };

const STALE_EMPTY_MS = 10_000;
const held = new Set<string>();
let exitHook = false;

/** Is `pid` a live process on this machine? (EPERM: it exists, owned by another user.) */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text);
    return Number.isInteger(o?.pid) && typeof o.host === 'string' ? { pid: o.pid, host: o.host, since: String(o.since ?? '') } : null;
  } catch {
    return null;
  }
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function ageMs(file: string): number {
  try {
    return Date.now() - fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function isStale(text: string, file: string): boolean {
  const owner = parseOwner(text);
  if (!owner) return ageMs(file) > STALE_EMPTY_MS;
  return owner.host === os.hostname() && !pidAlive(owner.pid);
}

/** Remove `file` if it still holds `text` (the stale content we judged), under the take-over lock. */
function takeOver(file: string, text: string): void {
  const guard = `${file}.takeover`;
  try {
    fs.writeFileSync(guard, String(process.pid), { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const g = readText(guard);
    // a taker that died between its two steps
    if (g !== null && ((/^\d+$/.test(g) && !pidAlive(Number(g))) || ageMs(guard) > STALE_EMPTY_MS)) fs.rmSync(guard, { force: true });
    return;
  }
  try {
    if (readText(file) === text) fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(guard, { force: true });
  }
}

/** One try at taking the lock `file` (its folder is created); never waits. */
export function tryLock(file: string): LockAttempt {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const mine = JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() }) + '\n';
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, mine, { flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const text = readText(file);
      if (text === null) continue; // released meanwhile
      if (!isStale(text, file)) return { ok: false, owner: parseOwner(text) };
      takeOver(file, text);
      continue;
    }
    held.add(file);
    if (!exitHook) {
      exitHook = true;
      // a second Ctrl-C exits at once: leave no lock of ours behind
      process.on('exit', () => {
        for (const f of held) if (readText(f) !== null && parseOwner(readText(f)!)?.pid === process.pid) fs.rmSync(f, { force: true });
      });
    }
    return {
      ok: true,
      release: () => {
        held.delete(file);
        if (readText(file) === mine) fs.rmSync(file, { force: true });
      },
    };
  }
  const text = readText(file);
  return { ok: false, owner: text === null ? null : parseOwner(text) };
}

/** "pid 1234 on HOST since 2026-..." (or "another process" for a lock file without an owner). */
export function describeOwner(o: LockOwner | null): string {
  return o ? `pid ${o.pid} on ${o.host}${o.since ? ` since ${o.since}` : ''}` : 'another process';
}

/**
 * Take the lock, waiting while another live process holds it; `onWait` is called once with the owner when it has
 * to wait. `shouldStop` ends the wait with null.
 */
export async function waitLock(
  file: string,
  o: { onWait?: (owner: LockOwner | null) => void; pollMs?: number; shouldStop?: () => boolean } = {},
): Promise<(() => void) | null> {
  let told = false;
  for (;;) {
    const a = tryLock(file);
    if (a.ok) return a.release;
    if (!told) o.onWait?.(a.owner);
    told = true;
    if (o.shouldStop?.()) return null;
    await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
  }
}
