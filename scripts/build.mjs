#!/usr/bin/env node
// The build (`npm run build`, and `prepare` at install): esbuild transpiles every TypeScript source to dist/ (no type
// check: that is `npm run typecheck`, tsc), and bundles tfjs-core's gradients and chained ops into
// dist/vendor/tfjs-extras.cjs, which src/runtime/tf.ts loads (tfjs-core's Node build ships neither; see src/runtime/tf.ts).
// It needs only production dependencies, so `npm ci --omit=dev` builds too.
import { buildSync } from 'esbuild';
import { readdirSync, statSync, rmSync, mkdirSync, renameSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const entries = [
  ...['src', 'generators', 'rewards', 'bench'].flatMap((d) => walk(d)),
  ...readdirSync('scripts')
    .filter((n) => n.endsWith('.ts'))
    .map((n) => join('scripts', n)),
];
// build into a temporary folder and swap it in: an interrupted build never leaves a half-written dist/
const tmp = `dist.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
try {
  buildSync({
    entryPoints: entries,
    outdir: tmp,
    outbase: '.',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    logLevel: 'warning',
  });
  mkdirSync(join(tmp, 'vendor'), { recursive: true });
  buildSync({
    stdin: {
      contents:
        "import '@tensorflow/tfjs-core/dist/register_all_gradients.js';\nimport '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';\n",
      resolveDir: root,
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: join(tmp, 'vendor', 'tfjs-extras.cjs'),
    logLevel: 'warning',
  });
  rmSync('dist', { recursive: true, force: true });
  renameSync(tmp, 'dist');
} catch (e) {
  rmSync(tmp, { recursive: true, force: true });
  throw e;
}
