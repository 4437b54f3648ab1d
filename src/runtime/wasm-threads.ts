// Multi-threaded wasm in Node. tfjs-backend-wasm 4.22 turns threads off under Node (flags_wasm.ts, issue #3830):
// its threaded build loads its pthread workers and their main script from Blob URLs, which Node's worker_threads
// cannot open, and XNNPACK sizes its pool from os.cpus() / 2. This shim, used only while the backend starts, (1) turns
// the two Blobs into files in a temporary folder (the worker's own object-URL call is pointed at the main-script
// file, and the Node modules that rollup renamed in the factory's source are defined for it), and (2) reports at
// least 2 x N logical cores so that XNNPACK creates N threads. It depends on tfjs-backend-wasm 4.22's internals:
// the test suite checks it (test/unit/wasm-threads.test.ts) and RENO_WASM_THREADS=1 turns it off.
// Emscripten refs a pthread's worker while the thread runs, and XNNPACK's pool threads run (waiting for work) until
// the module ends: a process that used them never ended by itself (a benchmark's child process printed its rows and
// then slept forever, and its parent with it). unrefWasmWorkers lets them go: the process ends when its own work is
// done, the workers with it (a kernel runs synchronously on the main thread, so no pool work is ever cut short).
import * as tf from './tf.js';
import { setting } from './settings.js';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
let requested = 0;

/** Ask for N wasm threads when the wasm backend starts (the CLI asks for one per core). */
export function requestWasmThreads(n: number): void {
  requested = n;
}

/** Threads to start with: $RENO_WASM_THREADS, else what was requested, else 1. */
export function wasmThreads(): number {
  const n = setting('wasmThreads') ?? requested;
  return process.platform === 'linux' || process.platform === 'darwin' ? Math.max(1, n) : 1;
}

interface PThreadWorker {
  unref(): void;
}

/** Let the wasm module's pthread workers (running or idle) stop keeping the event loop alive; returns how many. */
export function unrefWasmWorkers(): number {
  const wasm = (tf.backend() as unknown as { wasm?: { PThread?: { runningWorkers: PThreadWorker[]; unusedWorkers: PThreadWorker[] } } }).wasm;
  const pt = wasm?.PThread;
  if (!pt) return 0;
  const all = [...pt.runningWorkers, ...pt.unusedWorkers];
  for (const w of all) w.unref();
  return all.length;
}

/** Install the shim for N threads; returns the function that removes it. */
export function installWasmThreadShim(n: number): () => void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reno-wasm-threads-'));
  const mainPath = path.join(dir, 'main.js');
  const RealBlob = globalThis.Blob;
  const urlDesc = Object.getOwnPropertyDescriptor(URL, 'createObjectURL')!;
  const osCjs = require('os') as { cpus: typeof os.cpus };
  const realCpus = osCjs.cpus;
  // the factory's source was bundled with rollup's names for its Node modules: define them in the worker too
  const prelude =
    "var commonjsGlobal=globalThis,require$$0=require('fs'),require$$1=require('path'),require$$2=require('worker_threads'),require$$3=require('perf_hooks'),require$$4=require('os');";
  class TextBlob extends RealBlob {
    readonly source: string;
    constructor(...[parts, opts]: ConstructorParameters<typeof Blob>) {
      super(parts, opts);
      this.source = (parts ?? []).map((p) => (typeof p === 'string' ? p : '')).join('');
      if (this.source.startsWith('var WasmBackendModuleThreadedSimd')) fs.writeFileSync(mainPath, prelude + this.source);
    }
  }
  let files = 0;
  globalThis.Blob = TextBlob as typeof Blob;
  Object.defineProperty(URL, 'createObjectURL', {
    configurable: true,
    writable: true,
    value: (b: Blob) => {
      const f = path.join(dir, `worker-${files++}.js`);
      // inside the worker, the main script arrives as a Blob and is opened by object URL: hand it the file instead
      const workerPrelude = `URL.createObjectURL=function(){return ${JSON.stringify(mainPath)}};URL.revokeObjectURL=function(){};`;
      fs.writeFileSync(f, workerPrelude + ((b as TextBlob).source ?? ''));
      return f;
    },
  });
  osCjs.cpus = () => {
    const c = realCpus();
    while (c.length < 2 * n) c.push(c[0]);
    return c;
  };
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  return () => {
    globalThis.Blob = RealBlob;
    Object.defineProperty(URL, 'createObjectURL', urlDesc);
    osCjs.cpus = realCpus;
  };
}
