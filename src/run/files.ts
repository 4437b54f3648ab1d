// Writing files so that nothing is ever half-written: write to a temporary name in the same folder, then rename.
import * as fs from 'node:fs';
import * as path from 'node:path';

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** Append one line (JSONL); an interrupted append leaves at most one incomplete last line, which readers skip. */
export function appendLine(file: string, line: string): void {
  fs.appendFileSync(file, line.endsWith('\n') ? line : line + '\n');
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

/** outputs/<YYYYMMDD-HHMMSS>-<slug>/, made unique with a numeric suffix. */
export function newRunDir(root: string, prompt: string, now = new Date()): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${p2(now.getMonth() + 1)}${p2(now.getDate())}-${p2(now.getHours())}${p2(now.getMinutes())}${p2(now.getSeconds())}`;
  const base = path.join(root, `${stamp}-${slugify(prompt)}`);
  let dir = base;
  for (let i = 2; fs.existsSync(dir); i++) dir = `${base}-${i}`;
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
