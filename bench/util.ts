// Benchmark helpers: flags, timing with warm-up, peak tensor memory (tf.profile) and RSS, a result table.
import * as tf from '../src/runtime/tf.js';
import * as os from 'node:os';
import { useBackend } from '../src/runtime/backend.js';

export function flag(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}

export function has(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

export interface Measure {
  seconds: number;
  peakMB: number;
  rssMB: number;
}

/** Median seconds over `reps` runs after one warm-up, and the peak tensor bytes of one run. */
export async function measure(fn: () => tf.Tensor | tf.Tensor[] | void, reps = 3, warmup = 1): Promise<Measure> {
  // results are read back asynchronously (WebGPU in Node has no synchronous read), which also waits for the device
  const run = async () => {
    const out = fn();
    if (out)
      for (const t of Array.isArray(out) ? out : [out]) {
        await t.data();
        t.dispose();
      }
  };
  for (let i = 0; i < warmup; i++) await run();
  const times: number[] = [];
  let peak = 0;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    if (i === 0)
      peak = (await tf.profile(() => run())).peakBytes; // the info object is shared: read it at once
    else await run();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return { seconds: times[Math.floor(times.length / 2)], peakMB: peak / 2 ** 20, rssMB: process.memoryUsage().rss / 2 ** 20 };
}

export async function backends(list: string): Promise<string[]> {
  const out: string[] = [];
  for (const b of list.split(',')) {
    try {
      await useBackend(b, { quiet: true });
      out.push(b);
    } catch (e) {
      console.log(`# backend ${b} not available: ${(e as Error).message}`);
    }
  }
  return out;
}

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} x ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, tfjs ${tf.version_core}`;
}

export function row(cells: (string | number)[]): string {
  return `| ${cells.map((c) => (typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toFixed(3)) : c)).join(' | ')} |`;
}
