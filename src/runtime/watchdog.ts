// The wasm kernel watchdog: a run never hangs silently. Every wasm kernel marks its start and end in shared memory (a
// sequence number that is odd while a kernel runs, the kernel and its first input's shape, and the stage set by
// watchStage); a worker thread, whose event loop does not depend on the main thread's, looks once a second. When one
// kernel has run for longer than RENO_WASM_WATCHDOG seconds, the worker reports it as a StallError (which kernel, its
// input shape, the stage, how many kernels had finished) and ends the process. A wasm kernel runs synchronously on the
// main thread, so a stalled one (a deadlock between pthreads, say) leaves that thread no way to run the CLI's handler:
// the worker prints the error the same way (`reno: <message>`) and then kills the process (SIGKILL: a JS signal
// listener could never run either), which a shell sees as exit status 137.
import * as tf from './tf.js';
import { Worker } from 'node:worker_threads';
import { StallError } from '../errors.js';
import { setting } from './settings.js';

// Int32 slots of the shared buffer
const SEQ = 0; // kernels started + kernels ended: odd while a kernel runs
const KERNEL = 1; // index of the running kernel in the names table
const RANK = 2; // rank of its first input (-1: none)
const SHAPE = 3; // up to MAX_RANK dimensions
const MAX_RANK = 6;
const STAGE_LEN = SHAPE + MAX_RANK; // length in bytes of the stage label
const STAGE = STAGE_LEN + 1; // the stage label, UTF-8, from this slot on
const STAGE_BYTES = 128;
const SLOTS = STAGE + STAGE_BYTES / 4;

let shared: Int32Array | null = null;
let worker: Worker | null = null;
const encoder = new TextEncoder();

/** A stall's message: `where` is " on an input of shape [...] (stage)" or empty. */
export function stallMessage(o: { kernel: string; where: string; seconds: string; done: string; limit: number }): string {
  return (
    `the wasm kernel ${o.kernel}${o.where} made no progress for ${o.seconds} s, after ${o.done} kernels had finished: ` +
    `stopped by the watchdog (RENO_WASM_WATCHDOG=${o.limit}; a larger number of seconds gives slow kernels more time, off turns it off). ` +
    'If this repeats, run with RENO_WASM_THREADS=1 and report it'
  );
}

// the worker's code: a plain script (no TypeScript, no imports of reno's), started with eval
const WORKER = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { sab, names, limit, SEQ, KERNEL, RANK, SHAPE, STAGE_LEN, STAGE, template } = workerData;
const a = new Int32Array(sab);
let last = -1, since = Date.now();
setInterval(() => {
  const seq = Atomics.load(a, SEQ);
  const now = Date.now();
  if (seq !== last || (seq & 1) === 0) { last = seq; since = now; return; }
  const seconds = Math.round((now - since) / 1000);
  if (seconds < limit) return;
  const rank = a[RANK];
  const shape = rank >= 0 ? Array.from(a.subarray(SHAPE, SHAPE + rank)) : null;
  const stage = Buffer.from(sab, STAGE * 4, a[STAGE_LEN]).toString('utf8');
  const where = (shape ? ' on an input of shape [' + shape.join(', ') + ']' : '') + (stage ? ' (' + stage + ')' : '');
  const msg = template
    .replace('%KERNEL%', names[a[KERNEL]] ?? '?')
    .replace('%WHERE%', where)
    .replace('%SECONDS%', String(seconds))
    .replace('%DONE%', String((seq - 1) / 2));
  fs.writeSync(2, 'reno: ' + msg + '\\n');
  process.kill(process.pid, 'SIGKILL');
}, 1000);
`;

let stage = '';

/** Label what runs from now on (shown when a kernel stalls): the forward or backward pass of a gradient, say.
 * Returns the label it replaces, to put back afterwards. */
export function watchStage(label: string): string {
  const prev = stage;
  stage = label;
  if (!shared || label === prev) return prev;
  const bytes = encoder.encode(label).subarray(0, STAGE_BYTES);
  new Uint8Array(shared.buffer, STAGE * 4, STAGE_BYTES).set(bytes);
  shared[STAGE_LEN] = bytes.length;
  return prev;
}

/**
 * Watch every kernel of `backend` (wasm) from now on: each registered kernel's function is wrapped to mark its start
 * and end. RENO_WASM_WATCHDOG (seconds, off) sets the limit; returns whether the watchdog runs.
 */
export function startKernelWatchdog(backend = 'wasm'): boolean {
  const limit = setting('wasmWatchdog');
  if (limit === null || worker) return worker !== null;
  const sab = new SharedArrayBuffer(SLOTS * 4);
  const a = new Int32Array(sab);
  a[RANK] = -1;
  const names: string[] = [];
  for (const k of tf.getKernelsForBackend(backend)) {
    if ((k as { watched?: boolean }).watched) continue;
    const index = names.push(k.kernelName) - 1;
    const run = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, backend);
    tf.registerKernel({
      ...k,
      watched: true,
      kernelFunc: ((args: { inputs: Record<string, tf.TensorInfo | undefined> }) => {
        Atomics.add(a, SEQ, 1);
        a[KERNEL] = index;
        let first: tf.TensorInfo | undefined;
        for (const name in args.inputs) {
          first = args.inputs[name];
          break;
        }
        const rank = first ? Math.min(first.shape.length, MAX_RANK) : -1;
        a[RANK] = rank;
        for (let i = 0; i < rank; i++) a[SHAPE + i] = first!.shape[i];
        try {
          return run(args as Parameters<tf.KernelFunc>[0]);
        } finally {
          Atomics.add(a, SEQ, 1);
        }
      }) as unknown as tf.KernelFunc,
    } as tf.KernelConfig);
  }
  const template = new StallError(stallMessage({ kernel: '%KERNEL%', where: '%WHERE%', seconds: '%SECONDS%', done: '%DONE%', limit })).message;
  worker = new Worker(WORKER, {
    eval: true,
    workerData: { sab, names, limit, SEQ, KERNEL, RANK, SHAPE, STAGE_LEN, STAGE, template },
    stdout: false,
    stderr: false,
  });
  // the watchdog never keeps a process alive
  worker.unref();
  shared = a;
  return true;
}
