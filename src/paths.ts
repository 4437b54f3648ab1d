// Where reno's own files live (configs/, presets/, examples/), whether run from src/ with tsx, from dist/, or from a
// bundle (told by RENO_ROOT, read in src/runtime/settings.ts, which calls setPackageRoot).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

/** The folder holding reno's package.json (walks up from this module). */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'reno') return (root = dir);
      } catch {
        // not ours; keep walking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find reno package root');
    dir = up;
  }
}

/** A bundled build (bench/gpu-pack.sh) runs outside the checkout and is told where it is (RENO_ROOT). */
export function setPackageRoot(dir: string): void {
  root = path.resolve(dir);
}

let version: string | null = null;

/** reno's version (package.json), read when first asked for. */
export function renoVersion(): string {
  return (version ??= JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version as string);
}
