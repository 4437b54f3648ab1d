#!/usr/bin/env node
// The `reno` command: runs the compiled CLI (npm install builds it via the "prepare" script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/run.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('reno: not built yet; run `npm run build` (npm install does it) in ' + fileURLToPath(new URL('..', import.meta.url)) + '\n');
  process.exit(1);
}
await import(entry.href);
