// TensorFlow.js as reno uses it, the one module that imports the tfjs packages' roots: tfjs-core, its gradients and
// chained ops, and the cpu backend. The umbrella package @tensorflow/tfjs registers the gradients and chained ops too,
// but brings layers, converter, data and webgl (about 240 MB) that reno never uses; tfjs-core's Node build
// (dist/tf-core.node.js) ships neither, so scripts/build.mjs bundles them from tfjs-core's own sources into
// dist/vendor/tfjs-extras.cjs (they register into tfjs' global registries, shared with this copy of the engine).
//
// reno patches tfjs internals (the backward pass, the WebGPU buffer manager and uploads, the wasm thread shim) that
// exist in exactly one version: TFJS_VERSION. checkTfjsVersions() says so clearly when another one is installed.
import '@tensorflow/tfjs-backend-cpu';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { InstallError } from '../errors.js';
import { packageRoot } from '../paths.js';
import { setting } from './settings.js';

export * from '@tensorflow/tfjs-core';
// the chained ops' types (x.reshape(...)); their code is in dist/vendor/tfjs-extras.cjs
export type {} from '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';

/** The tfjs version whose internals reno patches (package.json pins every tfjs package to it). */
export const TFJS_VERSION = '4.22.0';

const PATCHED = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-webgpu'];

/** The installed version of each tfjs package reno patches (absent: not installed). */
export function installedTfjsVersions(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const out: Record<string, string> = {};
  for (const pkg of PATCHED) {
    try {
      out[pkg] = (require(`${pkg}/package.json`) as { version: string }).version;
    } catch {
      // not installed
    }
  }
  return out;
}

/** Throws an InstallError naming each installed tfjs package that is not at TFJS_VERSION. */
export function checkTfjsVersions(found: Record<string, string> = installedTfjsVersions()): void {
  const wrong = Object.entries(found).filter(([, v]) => v !== TFJS_VERSION);
  if (wrong.length)
    throw new InstallError(
      `reno needs TensorFlow.js ${TFJS_VERSION} exactly (it patches its internals), found ${wrong.map(([p, v]) => `${p} ${v}`).join(', ')}: ` +
        'reinstall from the lockfile (npm ci)',
    );
}

function loadExtras(): void {
  const file = path.join(setting('root') ?? packageRoot(), 'dist', 'vendor', 'tfjs-extras.cjs');
  if (!fs.existsSync(file))
    throw new InstallError(
      `reno is not built: ${file} is missing (tfjs' gradients); run \`npm run build\` (npm install does it) in ${packageRoot()}`,
    );
  createRequire(import.meta.url)(file);
}
loadExtras();
