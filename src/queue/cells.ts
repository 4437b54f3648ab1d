// The state of a cell's run folder, shared by local sweeps, queue workers and the collector (which needs no Redis):
// - <cell>/done.json {hash, values}: finished (written last, inside the folder, before it gets its final name);
// - <cell>/failed.json {hash, values, error}: failed for good (a usage, config or model error, or out of retries);
// - <cell>.partial-<host>-<pid>: a worker's folder in the making, renamed to <cell> when complete. A dead worker's
//   partial folder is never read: the next worker to run the cell removes it and starts over.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/files.js';

function readJson(file: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8'));
    return v && typeof v === 'object' ? v : null;
  } catch {
    return null;
  }
}

/** True when `dir` holds a finished run of the config whose hash is `hash`. */
export function cellDone(dir: string, hash: string): boolean {
  return readJson(path.join(dir, 'done.json'))?.hash === hash;
}

/** The error of a cell that failed for good (failed.json of the same config), else null. */
export function cellFailure(dir: string, hash: string): string | null {
  const f = readJson(path.join(dir, 'failed.json'));
  return f && f.hash === hash && typeof f.error === 'string' ? f.error : null;
}

/** Record that the cell failed for good: the folder then holds only failed.json (a rerun redoes the cell). */
export function writeCellFailure(dir: string, hash: string, values: Record<string, unknown>, error: string): void {
  if (cellDone(dir, hash)) return; // finished elsewhere meanwhile: the finished run wins
  fs.rmSync(dir, { recursive: true, force: true });
  writeFileAtomic(path.join(dir, 'failed.json'), JSON.stringify({ hash, values, error }) + '\n');
}

/** This process's folder in the making for the cell `dir`. */
export function partialDir(dir: string): string {
  return `${dir}.partial-${os.hostname()}-${process.pid}`;
}

/** Remove every partial folder of the cell `dir` (a dead worker's included): the caller holds the cell's job. */
export function removePartials(dir: string): void {
  const parent = path.dirname(dir);
  const prefix = `${path.basename(dir)}.partial-`;
  let names: string[] = [];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith(prefix)) fs.rmSync(path.join(parent, n), { recursive: true, force: true });
}

/** Give the complete folder `partial` its final name `dir`, replacing whatever was there (a failed or stale run). */
export function publishCell(partial: string, dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(partial, dir);
}
