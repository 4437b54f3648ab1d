// The rooms of the source tree and the one direction of imports between them (README, "Development"): a file may
// import from its own layer or a lower one, never from a higher one. Every relative import in src/, rewards/ and
// generators/ is parsed and checked; a file in no room of the table fails too, so a new folder gets a layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** Layers, ground upward: [layer name, path prefixes]. The longest matching prefix names a file's room. */
export const LAYERS: [string, string[]][] = [
  ['ground', ['src/errors.ts', 'src/paths.ts', 'src/util/', 'src/config/', 'src/tokenizers/', 'src/data/']],
  ['runtime', ['src/runtime/']],
  ['nn', ['src/nn/', 'src/image/']],
  ['weights', ['src/weights/']],
  ['models', ['src/models/']],
  ['plug-in parts', ['generators/', 'src/preference/']],
  ['rewards', ['rewards/']],
  ['optimize', ['src/optimize/', 'src/parity/']],
  ['run', ['src/run/', 'src/report/']],
  ['queue', ['src/queue/']],
  ['commands', ['src/commands/', 'src/ui/']],
  ['cli', ['src/cli/']],
];

/** The layer index of a repository-relative path (forward slashes), or -1 when it is in no room. */
export function layerOf(file: string): number {
  let best = -1;
  let bestLen = -1;
  LAYERS.forEach(([, prefixes], i) => {
    for (const p of prefixes)
      if ((file === p || file.startsWith(p)) && p.length > bestLen) {
        best = i;
        bestLen = p.length;
      }
  });
  return best;
}

const SPEC = /(?:\bfrom\s*|\bimport\s*|\bimport\(\s*)['"](\.\.?\/[^'"\n]+)['"]/g;

/** Every relative import of a source text, as repository-relative target paths (.js specifiers mean .ts files). */
export function relativeImports(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(SPEC)) {
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]));
    out.push(target.replace(/\.js$/, '.ts'));
  }
  return out;
}

/** Each import against the direction (or out of every room), as "from -> to (layer -> layer)". */
export function violations(edges: readonly (readonly [string, string])[]): string[] {
  const bad: string[] = [];
  for (const [from, to] of edges) {
    const a = layerOf(from);
    const b = layerOf(to);
    if (a < 0) bad.push(`${from}: in no room of the layer table`);
    else if (b < 0) bad.push(`${from} -> ${to}: the target is in no room of the layer table`);
    else if (b > a) bad.push(`${from} -> ${to} (${LAYERS[a][0]} imports ${LAYERS[b][0]})`);
  }
  return [...new Set(bad)];
}

function sources(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) sources(rel, out);
    else if (e.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

function treeEdges(): [string, string][] {
  const files = ['src', 'rewards', 'generators'].flatMap((d) => sources(d));
  return files.flatMap((f) => relativeImports(f, fs.readFileSync(path.join(ROOT, f), 'utf8')).map((t): [string, string] => [f, t]));
}

test('every relative import in src, rewards and generators goes down the layers (or stays in its layer)', () => {
  const edges = treeEdges();
  assert.ok(edges.length > 500, `parsed only ${edges.length} imports`);
  for (const [, to] of edges) assert.ok(fs.existsSync(path.join(ROOT, to)), `import target ${to} does not exist`);
  assert.deepEqual(violations(edges), []);
});

test('the check fails on an upward import added to the tree, and on a file outside every room', () => {
  const edges = treeEdges();
  // a model that reached up to the loop, and a runtime module that reached up to a reward
  const upward: [string, string][] = [
    ['src/models/clip/model.ts', 'src/optimize/loop.ts'],
    ['src/runtime/backend.ts', 'rewards/index.ts'],
  ];
  assert.deepEqual(violations([...edges, ...upward]), [
    'src/models/clip/model.ts -> src/optimize/loop.ts (models imports optimize)',
    'src/runtime/backend.ts -> rewards/index.ts (runtime imports rewards)',
  ]);
  // the same upward import parsed from source text, as a file would hold it
  const line = (names: string, spec: string) => `import ${names} from '${spec}';\n`;
  const text = line('* as tf', '../tf.js') + line('{ seededNoise }', '../../optimize/noise.js');
  assert.deepEqual(violations(relativeImports('src/runtime/webgpu/setup.ts', text).map((t) => ['src/runtime/webgpu/setup.ts', t] as const)), [
    'src/runtime/webgpu/setup.ts -> src/optimize/noise.ts (runtime imports optimize)',
  ]);
  assert.deepEqual(violations([['src/newroom/app.ts', 'src/errors.ts']]), ['src/newroom/app.ts: in no room of the layer table']);
});
