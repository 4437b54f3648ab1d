// The job queue's throughput and overhead (issue 20), on the tiny preset (64 px, 2 steps, PickScore only, wasm):
// - a local sweep in this process (the baseline: no queue);
// - the same cells through `reno sweep --queue` with 1 and then 2 `reno worker` processes on this machine (started
//   and waiting before the clock starts; each loads its models on its first job, as the local sweep does);
// - BullMQ's own cost per job: no-op jobs through a worker in this process.
// Needs redis-server (the Debian package); starts its own on a free loopback port.
//   npx tsx bench/queue.ts [--cells 8] [--noop 300]
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { REWARDS } from '../rewards/index.js';
import { sweepCommand } from '../src/commands/sweep.js';
import { connectQueue } from '../src/queue/connection.js';
import { redisMissing, startRedis } from '../test/redis-server.js';
import { flag } from './util.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'src', 'cli', 'run.ts');
const OFF = { ...Object.fromEntries(REWARDS.map((r) => [r.name, 0])), pickscore: 1 };

/** A worker process, once it waits for jobs; `events` gets [ms, 'started' | 'done'] for each job line it prints. */
function startWorker(url: string, events: [number, string][]): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CLI, 'worker', '--queue', url, '--preset', 'tiny', '--backend', 'wasm', '--lock-duration', '120'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
      for (const m of String(d).matchAll(/\) (started|done)/g)) events.push([performance.now(), m[1]]);
      if (/waiting for jobs/.test(err)) resolve(child);
    });
    child.on('exit', (c) => reject(new Error(`worker exited ${c}: ${err}`)));
  });
}

async function main(): Promise<void> {
  if (redisMissing) {
    console.log(`skipped: ${redisMissing}`);
    return;
  }
  const cells = Number(flag('cells', '8'));
  const noop = Number(flag('noop', '300'));
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'reno-bench-queue-'));
  const file = path.join(d, 'sweep.yaml');
  fs.writeFileSync(
    file,
    `base:\n  prompt: a red fox\n  steps: 2\n  weights: ${JSON.stringify(OFF)}\ngrid:\n  seed: [${[...Array(cells).keys()].join(', ')}]\n`,
  );
  const redis = await startRedis();
  const rows: string[] = [];
  try {
    let t0 = performance.now();
    await sweepCommand({ file, out: path.join(d, 'local'), preset: 'tiny', backend: 'wasm', quiet: true });
    const local = (performance.now() - t0) / 1000;
    rows.push(`| local sweep, this process | ${cells} | ${local.toFixed(1)} | ${((cells / local) * 60).toFixed(1)} |`);
    const perWorkers: Record<number, number> = {};
    let gapMs = NaN;
    let jobMs = NaN;
    for (const n of [1, 2]) {
      const events: [number, string][] = [];
      const workers = await Promise.all([...Array(n)].map(() => startWorker(redis.url, events)));
      try {
        t0 = performance.now();
        await sweepCommand({ file, out: path.join(d, `queue-${n}`), preset: 'tiny', quiet: true, queue: redis.url, log: () => {} });
        perWorkers[n] = (performance.now() - t0) / 1000;
      } finally {
        for (const w of workers) {
          w.kill('SIGTERM');
          await new Promise((r) => w.once('exit', r));
        }
      }
      if (n === 1) {
        // one worker: the time from a job's end to the next one's start is the queue's own cost per job
        const gaps: number[] = [];
        const runs: number[] = [];
        for (let i = 1; i < events.length; i++) {
          if (events[i - 1][1] === 'done' && events[i][1] === 'started') gaps.push(events[i][0] - events[i - 1][0]);
          if (events[i - 1][1] === 'started' && events[i][1] === 'done' && i > 1) runs.push(events[i][0] - events[i - 1][0]);
        }
        gapMs = gaps.reduce((a, b) => a + b, 0) / gaps.length;
        jobMs = runs.reduce((a, b) => a + b, 0) / runs.length;
      }
      rows.push(
        `| queue, ${n} worker process${n > 1 ? 'es' : ''} | ${cells} | ${perWorkers[n].toFixed(1)} | ${((cells / perWorkers[n]) * 60).toFixed(1)} |`,
      );
    }
    t0 = performance.now();
    await sweepCommand({ file, out: path.join(d, 'local-again'), preset: 'tiny', backend: 'wasm', quiet: true });
    const localAgain = (performance.now() - t0) / 1000;
    rows.push(`| local sweep again, after the queue runs | ${cells} | ${localAgain.toFixed(1)} | ${((cells / localAgain) * 60).toFixed(1)} |`);
    // a local sweep in its own \`reno sweep\` process (as the workers are), timed from its backend line, as the workers
    // are timed once they wait
    const cliLocal = await new Promise<number>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', CLI, 'sweep', file, '--out', path.join(d, 'local-cli'), '--preset', 'tiny', '--backend', 'wasm'],
        { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let start = NaN;
      child.stderr!.on('data', (x) => {
        if (Number.isNaN(start) && /reno: backend/.test(String(x))) start = performance.now();
      });
      child.on('exit', (c) => (c === 0 ? resolve((performance.now() - start) / 1000) : reject(new Error(`reno sweep exited ${c}`))));
    });
    rows.push(`| local sweep, its own \`reno sweep\` process | ${cells} | ${cliLocal.toFixed(1)} | ${((cells / cliLocal) * 60).toFixed(1)} |`);
    // BullMQ alone: no-op jobs, added in bulk, through one worker in this process
    const conn = await connectQueue(redis.url);
    const q = new Queue('bench-noop', { connection: conn });
    let left = noop;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => (resolveAll = r));
    const w = new Worker(
      'bench-noop',
      async () => {
        if (--left === 0) setImmediate(resolveAll);
      },
      { connection: conn, concurrency: 1 },
    );
    t0 = performance.now();
    await q.addBulk([...Array(noop).keys()].map((i) => ({ name: 'noop', data: { i }, opts: { jobId: `noop-${i}` } })));
    await all;
    const noopMs = (performance.now() - t0) / noop;
    await w.close();
    await q.close();
    conn.disconnect();
    console.log(
      `cells: ${cells} (tiny preset, 64 px, 2 steps, PickScore, wasm); ${os.cpus().length} CPUs, load average ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}`,
    );
    console.log('| how | cells | seconds | jobs per minute |\n| --- | --- | --- | --- |');
    for (const r of rows) console.log(r);
    console.log(`1 worker, (queue - local reno sweep process) / cells: ${(((perWorkers[1] - cliLocal) / cells) * 1000).toFixed(0)} ms per job`);
    console.log(
      `1 worker, from a job's end to the next job's start (the queue's own cost): ${gapMs.toFixed(1)} ms per job; one job (after the first) runs ${jobMs.toFixed(0)} ms`,
    );
    console.log(`local, one cell: ${((local / cells) * 1000).toFixed(0)} ms (first run), ${((localAgain / cells) * 1000).toFixed(0)} ms (again)`);
    console.log(`BullMQ alone, ${noop} no-op jobs through one worker: ${noopMs.toFixed(2)} ms per job`);
  } finally {
    await redis.stop();
    fs.rmSync(d, { recursive: true, force: true });
  }
}

await main();
