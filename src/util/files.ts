// Writing files so that nothing is ever half-written: write to a temporary name in the same folder, then rename; a
// failed write removes its temporary file and becomes an OutputError naming the path (a full disk, a read-only file
// system, a file where a folder should be), never a stack trace.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OutputError } from '../errors.js';

/** The file-system calls the writers here make: one seam, so that tests can inject ENOSPC or EROFS on the real path. */
export const fsOps = {
  mkdirSync: fs.mkdirSync,
  writeFileSync: fs.writeFileSync,
  renameSync: fs.renameSync,
  appendFileSync: fs.appendFileSync,
};

const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EEXIST: 'a file is in the way',
  EISDIR: 'a folder is in the way',
  ENAMETOOLONG: 'name too long',
  EIO: 'input/output error',
};

/** A Node file-system error (it has an errno code) as an OutputError naming `file`; anything else unchanged. */
export function outputError(e: unknown, file: string): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (!(e instanceof Error) || typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return e;
  return new OutputError(`cannot write ${file}: ${REASONS[code] ?? e.message.replace(/^E[A-Z]+: /, '').replace(/, \w+ '.*'$/, '')} (${code})`);
}

/** mkdir -p, as an OutputError naming the folder when it cannot be made. */
export function makeDirs(dir: string): void {
  try {
    fsOps.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw outputError(e, dir);
  }
}

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  makeDirs(path.dirname(file));
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    fsOps.writeFileSync(tmp, data);
    fsOps.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw outputError(e, file);
  }
}

/** Append one line (JSONL); an interrupted append leaves at most one incomplete last line, which readers skip. */
export function appendLine(file: string, line: string): void {
  try {
    fsOps.appendFileSync(file, line.endsWith('\n') ? line : line + '\n');
  } catch (e) {
    throw outputError(e, file);
  }
}

/**
 * Fail early, before any model is loaded or anything is created, when `dir` cannot become a folder reno writes in:
 * it (or the nearest existing folder above it) is a file, or is not writable (a read-only file system; root
 * ignores permission bits, so this checks what the process itself may do). `what` names the flag, e.g. "--out".
 */
export function checkWritableDir(dir: string, what: string): void {
  const full = path.resolve(dir);
  let p = full;
  while (!fs.existsSync(p) && path.dirname(p) !== p) p = path.dirname(p);
  const named = `${what} ${dir}`;
  if (!fs.statSync(p).isDirectory()) throw new OutputError(`${named}: ${p} is a file, not a folder`);
  try {
    fs.accessSync(p, fs.constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new OutputError(`${named}: cannot write in ${p}: ${REASONS[code] ?? (e as Error).message} (${code})`);
  }
}

/** "a red fox, in snow" -> "a-red-fox-in-snow" (at most 40 characters). */
export function slugify(s: string): string {
  const slug = s
    .normalize('NFKD')
    .replace(/[^\w\s-]/g, '')
    .trim()
    .toLowerCase()
    .replace(/[\s_-]+/g, '-')
    .slice(0, 40)
    .replace(/-+$/, '');
  return slug || 'run';
}

/** outputs/<YYYYMMDD-HHMMSS>-<slug>/, made unique with a numeric suffix (an existing folder is never reused). */
export function newRunDir(root: string, prompt: string, now = new Date()): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${p2(now.getMonth() + 1)}${p2(now.getDate())}-${p2(now.getHours())}${p2(now.getMinutes())}${p2(now.getSeconds())}`;
  const base = path.join(root, `${stamp}-${slugify(prompt)}`);
  makeDirs(root);
  for (let i = 1; ; i++) {
    const dir = i === 1 ? base : `${base}-${i}`;
    try {
      fsOps.mkdirSync(dir);
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || i > 10_000) throw outputError(e, dir);
    }
  }
}

/**
 * After a failure: keep `dir` only if it holds every one of `required` (a valid, complete-looking folder), else
 * remove it, so that a failed command leaves nothing half-made. Returns whether the folder was kept.
 */
export function keepIfValid(dir: string, required: string[]): boolean {
  if (required.every((f) => fs.existsSync(path.join(dir, f)))) return true;
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    // best effort: the error that got us here is the one to report
  }
  return false;
}
