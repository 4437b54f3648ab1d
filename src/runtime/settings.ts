// reno's settings: the one module that reads RENO_* environment variables. Every setting has a default, its
// variable, and a parser that refuses a bad value with a UsageError naming the variable and the value. The CLI reads
// them once at start-up (readSettings: the environment, then its flags over it) and installs the result
// (installSettings); the runtime reads a setting with setting(name). Without an installed object (a library caller, a
// test) setting(name) parses that one variable from the environment at the time of the call. The README's table
// "Settings and environment variables" lists the same names, values and defaults (a test compares them).
import * as path from 'node:path';
import { UsageError } from '../errors.js';
import { setPackageRoot } from '../paths.js';

export const BACKENDS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** A tiled-product tile: rows x columns x depth per workgroup. */
export interface Tile {
  bm: number;
  bn: number;
  bk: number;
}
export const TILES: readonly string[] = ['64x64x16', '64x64x32', '128x64x16', '128x64x32'];
/** Winograd output tile size. */
export type WinogradM = 2 | 4;
export const DEFAULT_POOL_MB = 1024;
export const DEFAULT_PENDING_MB = 128;
/** RENO_WASM_WATCHDOG's default: seconds one wasm kernel may run (the slowest seen, a 512 px VAE convolution's
 * gradient on one thread, takes a few seconds). */
export const DEFAULT_WATCHDOG_S = 300;

/** A tile setting's value: 'tfjs' (or unset) for tfjs' own program, or one of TILES. A bad value names the variable. */
export function parseTile(raw: string | undefined, variable = 'RENO_WEBGPU_CONV'): Tile | null {
  if (raw === undefined || raw === '' || raw === 'tfjs') return null;
  if (!TILES.includes(raw)) throw new UsageError(`${variable} must be "tfjs" or one of ${TILES.join(', ')} (got "${raw}")`);
  const [bm, bn, bk] = raw.split('x').map(Number);
  return { bm, bn, bk };
}

/** RENO_WEBGPU_WINOGRAD's value: 4 (or on, or unset), 2, or off (null); anything else is a usage error naming the variable. */
export function parseWinograd(raw: string | undefined): WinogradM | null {
  if (raw === undefined || raw === '' || raw === 'on' || raw === '4') return 4;
  if (raw === '2') return 2;
  if (raw === 'off') return null;
  throw new UsageError(`RENO_WEBGPU_WINOGRAD must be 4, 2 or off (got "${raw}")`);
}

/** RENO_WEBGPU_ATTENTION: flash (the default, true) or chunked (false); anything else is a usage error. */
export function parseAttention(raw: string | undefined): boolean {
  if (raw === undefined || raw === '' || raw === 'flash') return true;
  if (raw === 'chunked') return false;
  throw new UsageError(`RENO_WEBGPU_ATTENTION must be flash or chunked (got "${raw}")`);
}

/** A size in MiB as bytes: unset -> the default, `off` -> Infinity, else a number >= 0. */
export function parseMib(raw: string | undefined, variable: string, dflt: number): number {
  if (raw === undefined || raw === '') return dflt * 2 ** 20;
  if (raw === 'off') return Infinity;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${variable} must be a number of MiB >= 0, or "off" (got "${raw}")`);
  return Math.floor(n * 2 ** 20);
}

/** RENO_WEBGPU_SUBMIT_BATCH: tfjs-webgpu's WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE, or null for tfjs' default. */
export function parseSubmitBatch(raw: string | undefined): number | null {
  if (raw === undefined || raw === '') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`RENO_WEBGPU_SUBMIT_BATCH must be a whole number >= 1 (got "${raw}")`);
  return n;
}

function onOff(variable: string) {
  return (raw: string | undefined): boolean => {
    if (raw === undefined || raw === '' || raw === 'on') return true;
    if (raw === 'off') return false;
    throw new UsageError(`${variable} must be on or off (got "${raw}")`);
  };
}

/** The typed settings. */
export interface Settings {
  backend: BackendName;
  weightDtype: 'fp32' | 'fp16';
  hostWeights: 'auto' | 'on' | 'off';
  /** wasm threads; null: the CLI's request (one per core), else 1 */
  wasmThreads: number | null;
  /** seconds one wasm kernel may run before the watchdog stops the process; null: no watchdog */
  wasmWatchdog: number | null;
  checkpoint: boolean;
  leanBackprop: boolean;
  shapeOnlySaves: boolean;
  webgpuFused: boolean;
  webgpuAttention: boolean;
  webgpuConv: Tile | null;
  webgpuMatmul: Tile | null;
  webgpuWinograd: WinogradM | null;
  webgpuPoolBytes: number;
  webgpuPendingBytes: number;
  webgpuSubmitBatch: number | null;
  /** reno's package folder for a bundled build; null: found from the module's location */
  root: string | null;
}

interface Spec<K extends keyof Settings> {
  variable: string;
  /** the values, for the README table and the errors */
  values: string;
  default: string;
  parse(raw: string | undefined): Settings[K];
}

/** Every setting: its variable, values, default and parser (the README table lists the same). */
export const SETTINGS: { [K in keyof Settings]: Spec<K> } = {
  backend: {
    variable: 'RENO_BACKEND',
    values: BACKENDS.join(', '),
    default: 'auto',
    parse: (raw) => {
      const name = (raw === undefined || raw === '' ? 'auto' : raw) as BackendName;
      if (!BACKENDS.includes(name)) throw new UsageError(`unknown backend "${name}" (choose one of ${BACKENDS.join(', ')})`);
      return name;
    },
  },
  weightDtype: {
    variable: 'RENO_WEIGHT_DTYPE',
    values: 'fp32, fp16',
    default: 'fp32',
    parse: (raw) => {
      const w = raw ?? 'fp32';
      if (w !== 'fp32' && w !== 'fp16') throw new UsageError(`RENO_WEIGHT_DTYPE must be fp32 or fp16, not "${w}"`);
      return w;
    },
  },
  hostWeights: {
    variable: 'RENO_HOST_WEIGHTS',
    values: 'auto, on, off',
    default: 'auto',
    parse: (raw) => {
      const h = raw ?? 'auto';
      if (h !== 'auto' && h !== 'on' && h !== 'off') throw new UsageError(`RENO_HOST_WEIGHTS must be auto, on or off, not "${h}"`);
      return h;
    },
  },
  wasmThreads: {
    variable: 'RENO_WASM_THREADS',
    values: 'a whole number >= 1',
    default: 'one per core (CLI), 1 (library)',
    parse: (raw) => {
      if (raw === undefined || raw === '') return null;
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`RENO_WASM_THREADS must be a whole number >= 1 (got "${raw}")`);
      return n;
    },
  },
  wasmWatchdog: {
    variable: 'RENO_WASM_WATCHDOG',
    values: 'seconds > 0, off',
    default: String(DEFAULT_WATCHDOG_S),
    parse: (raw) => {
      if (raw === undefined || raw === '') return DEFAULT_WATCHDOG_S;
      if (raw === 'off') return null;
      const n = Number(raw);
      if (!Number.isFinite(n) || n <= 0) throw new UsageError(`RENO_WASM_WATCHDOG must be a number of seconds > 0, or "off" (got "${raw}")`);
      return n;
    },
  },
  checkpoint: { variable: 'RENO_CHECKPOINT', values: 'on, off', default: 'on', parse: onOff('RENO_CHECKPOINT') },
  leanBackprop: { variable: 'RENO_LEAN_BACKPROP', values: 'on, off', default: 'on', parse: onOff('RENO_LEAN_BACKPROP') },
  shapeOnlySaves: { variable: 'RENO_SHAPE_ONLY_SAVES', values: 'on, off', default: 'on', parse: onOff('RENO_SHAPE_ONLY_SAVES') },
  webgpuFused: { variable: 'RENO_WEBGPU_FUSED', values: 'on, off', default: 'on', parse: onOff('RENO_WEBGPU_FUSED') },
  webgpuAttention: { variable: 'RENO_WEBGPU_ATTENTION', values: 'flash, chunked', default: 'flash', parse: parseAttention },
  webgpuConv: {
    variable: 'RENO_WEBGPU_CONV',
    values: `tfjs, ${TILES.join(', ')}`,
    default: 'tfjs',
    parse: (raw) => parseTile(raw, 'RENO_WEBGPU_CONV'),
  },
  webgpuMatmul: {
    variable: 'RENO_WEBGPU_MATMUL',
    values: `tfjs, ${TILES.join(', ')}`,
    default: 'tfjs',
    parse: (raw) => parseTile(raw, 'RENO_WEBGPU_MATMUL'),
  },
  webgpuWinograd: { variable: 'RENO_WEBGPU_WINOGRAD', values: '4 (or on), 2, off', default: '4', parse: parseWinograd },
  webgpuPoolBytes: {
    variable: 'RENO_WEBGPU_POOL_MB',
    values: 'MiB >= 0, off',
    default: String(DEFAULT_POOL_MB),
    parse: (raw) => parseMib(raw, 'RENO_WEBGPU_POOL_MB', DEFAULT_POOL_MB),
  },
  webgpuPendingBytes: {
    variable: 'RENO_WEBGPU_PENDING_MB',
    values: 'MiB >= 0, off',
    default: String(DEFAULT_PENDING_MB),
    parse: (raw) => parseMib(raw, 'RENO_WEBGPU_PENDING_MB', DEFAULT_PENDING_MB),
  },
  webgpuSubmitBatch: { variable: 'RENO_WEBGPU_SUBMIT_BATCH', values: 'a whole number >= 1', default: "tfjs' (15)", parse: parseSubmitBatch },
  root: {
    variable: 'RENO_ROOT',
    values: 'a folder',
    default: 'the package holding the running code',
    parse: (raw) => (raw === undefined || raw === '' ? null : path.resolve(raw)),
  },
};

export type Env = Readonly<Record<string, string | undefined>>;

/** Command-line flags that override their variable. */
export interface SettingFlags {
  backend?: string;
  weightDtype?: string;
}

/** Every setting from an environment (default: this process's), flags over it; a bad value is a UsageError. */
export function readSettings(env: Env = process.env, flags: SettingFlags = {}): Settings {
  const out = {} as Record<keyof Settings, unknown>;
  for (const k of Object.keys(SETTINGS) as (keyof Settings)[]) out[k] = readSetting(k, env);
  if (flags.backend !== undefined) out.backend = SETTINGS.backend.parse(flags.backend);
  if (flags.weightDtype !== undefined) {
    if (flags.weightDtype !== 'fp32' && flags.weightDtype !== 'fp16')
      throw new UsageError(`--weight-dtype must be fp32 or fp16, not "${flags.weightDtype}"`);
    out.weightDtype = flags.weightDtype;
  }
  return out as unknown as Settings;
}

/** One setting from an environment (default: this process's). */
export function readSetting<K extends keyof Settings>(name: K, env: Env = process.env): Settings[K] {
  const spec = SETTINGS[name];
  return spec.parse(env[spec.variable]);
}

let installed: Settings | null = null;

/** Make these the process's settings (the CLI, once at start-up); null goes back to reading the environment. */
export function installSettings(s: Settings | null): void {
  installed = s;
  if (s?.root) setPackageRoot(s.root);
}

/** A setting: the installed value, else its variable parsed now. */
export function setting<K extends keyof Settings>(name: K): Settings[K] {
  return installed ? installed[name] : readSetting(name);
}

// a bundled build is told where reno's files are before anything looks for them
const root = readSetting('root');
if (root) setPackageRoot(root);
