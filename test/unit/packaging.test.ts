// What a production install (`npm ci --omit=dev`) and reno's tfjs patches rely on: every package the shipped code
// imports is a dependency (not a dev one), every tfjs package is pinned to the one version reno patches and checked at
// start-up, and only src/runtime/tf.ts imports tfjs' roots (the umbrella @tensorflow/tfjs is not a dependency).
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { InstallError } from '../../src/errors.js';
import { checkTfjsVersions, installedTfjsVersions, TFJS_VERSION } from '../../src/runtime/tf.js';
import { ROOT } from '../helpers.js';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

function sources(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) sources(rel, out);
    else if (/\.(ts|mjs|js)$/.test(e.name)) out.push(rel);
  }
  return out;
}

/** Bare package names imported (statically or dynamically) by a source file. */
function imported(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const names = new Set<string>();
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s(?:[^;'"]*?\sfrom\s*)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
    names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
  }
  return [...names];
}

const shipped = [...sources('src'), ...sources('rewards'), ...sources('generators'), ...sources('bin'), 'scripts/build.mjs'];

test('every package the shipped code and its build import is a production or optional dependency', () => {
  const prod = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies ?? {})]);
  const missing = shipped.flatMap((f) =>
    imported(f)
      .filter((n) => !prod.has(n))
      .map((n) => `${f}: ${n}`),
  );
  assert.deepEqual(missing, []);
  assert.ok(
    shipped.some((f) => imported(f).includes('esbuild')),
    'the scan sees the build script import esbuild',
  );
});

test('the build and install steps need no dev dependency', () => {
  assert.match(pkg.scripts.prepare, /^node scripts\/build\.mjs$/);
  assert.ok(pkg.dependencies.esbuild, 'esbuild builds dist/ at install');
});

test('tfjs: every package pinned to the patched version, no umbrella, webgpu optional', () => {
  const all = { ...pkg.dependencies, ...pkg.optionalDependencies };
  const tfjs = Object.entries(all).filter(([n]) => n.startsWith('@tensorflow/'));
  assert.ok(tfjs.length >= 4);
  for (const [n, v] of tfjs) assert.equal(v, TFJS_VERSION, `${n} must be pinned to ${TFJS_VERSION}, found ${v}`);
  assert.equal(pkg.dependencies['@tensorflow/tfjs'], undefined);
  assert.equal(pkg.dependencies.webgpu, undefined);
  assert.ok(pkg.optionalDependencies.webgpu);
});

test('only src/runtime/tf.ts imports the roots of tfjs-core and the cpu backend', () => {
  const all = [...shipped, ...sources('test'), ...sources('bench'), ...sources('scripts')];
  const offenders = all.filter(
    (f) =>
      f !== path.join('src', 'runtime', 'tf.ts') &&
      imported(f).some((n) => n === '@tensorflow/tfjs' || n === '@tensorflow/tfjs-core' || n === '@tensorflow/tfjs-backend-cpu'),
  );
  // subpath imports of a backend's internals (its buffer manager in a test) are allowed; roots are not
  const roots = offenders.filter((f) => /['"]@tensorflow\/(tfjs|tfjs-core|tfjs-backend-cpu)['"]/.test(fs.readFileSync(path.join(ROOT, f), 'utf8')));
  assert.deepEqual(roots, []);
});

test('only src/report imports the chart libraries (vega, vega-lite)', () => {
  const all = [...shipped, ...sources('bench'), ...sources('scripts')];
  const users = all.filter((f) => imported(f).some((n) => n === 'vega' || n === 'vega-lite'));
  assert.ok(users.length > 0, 'the scan sees the charts import vega');
  assert.deepEqual(
    users.filter((f) => !f.startsWith(path.join('src', 'report') + path.sep)),
    [],
  );
});

test('the installed tfjs packages are the patched version; another version is an InstallError naming it', () => {
  const found = installedTfjsVersions();
  assert.equal(found['@tensorflow/tfjs-core'], TFJS_VERSION);
  assert.doesNotThrow(() => checkTfjsVersions(found));
  assert.throws(
    () => checkTfjsVersions({ ...found, '@tensorflow/tfjs-backend-wasm': '4.23.1' }),
    (e: unknown) => e instanceof InstallError && /@tensorflow\/tfjs-backend-wasm 4\.23\.1/.test(e.message) && e.message.includes(TFJS_VERSION),
  );
});

test('engines names the Node versions yargs 18 needs', () => {
  assert.equal(pkg.engines.node, '^20.19 || ^22.12 || >=23');
});
