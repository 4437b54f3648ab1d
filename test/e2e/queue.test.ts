// The job queue end to end (issue 20): a real redis-server on a free loopback port, `reno worker` processes on the
// tiny preset, a sweep of 6 cells submitted with `reno sweep --queue`; one worker SIGKILLed mid-job. Every cell
// finishes exactly once, the summary equals a local (sharded) run of the same sweep, nothing temporary is left,
// re-submitting enqueues nothing. Also: --shard I/N, an unreachable Redis, a malformed job payload, a model error on
// a worker (not retried, shown in the summary). Skips with its reason where redis-server is not installed.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { test } from 'node:test';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { sweepCommand } from '../../src/commands/sweep.js';
import { workerCommand } from '../../src/commands/worker.js';
import { batchCommand } from '../../src/commands/batch.js';
import { generateCommand } from '../../src/commands/generate.js';
import { connectQueue, parseQueueUrl, QUEUE_NAME } from '../../src/queue/connection.js';
import { cellJobId } from '../../src/queue/job.js';
import { jobPayload } from '../../src/queue/submit.js';
import { parseShard } from '../../src/queue/shard.js';
import { ROOT, tmpDir } from '../helpers.js';
import { freePort, redisMissing, startRedis } from '../redis-server.js';

const OFF = { imagereward: 0, aesthetic: 0, pickscore: 0, clip: 0, hpsv2: 0, personal: 0 };
const CLI = path.join(ROOT, 'src/cli/run.ts');

function sweepFile(d: string, seeds = [0, 1, 2, 3, 4, 5]): string {
  const file = path.join(d, 'q.yaml');
  fs.writeFileSync(
    file,
    `base:\n  prompt: a red fox\n  steps: 2\n  weights: ${JSON.stringify({ ...OFF, pickscore: 1 })}\ngrid:\n  seed: [${seeds.join(', ')}]\n`,
  );
  return file;
}

interface Proc {
  child: ChildProcess;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function cli(args: string[]): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (x) => (err += x));
  child.stdout!.resume();
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, stderr: () => err, exit };
}

// a short lock and stalled check, so that a killed worker's job is retried within seconds; the lock still outlasts
// one step of the tiny preset on a loaded machine (it is renewed between steps, not during one)
const worker = (url: string, extra: string[] = []) =>
  cli(['worker', '--queue', url, '--preset', 'tiny', '--backend', 'wasm', '--lock-duration', '20', '--stalled-interval', '1', ...extra]);

async function until(what: string, ok: () => boolean, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every file and folder under dir (relative paths). */
function walk(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel)).flatMap((n) => {
    const r = path.join(rel, n);
    return fs.statSync(path.join(dir, r)).isDirectory() ? [r + '/', ...walk(dir, r)] : [r];
  });
}

const summary = (dir: string) => fs.readFileSync(path.join(dir, 'summary.csv'), 'utf8');

test('--shard I/N runs cells k with k mod N == I; JOB_COMPLETION_INDEX gives I; bad shards are usage errors', () => {
  assert.deepEqual(parseShard('1/3'), { index: 1, count: 3 });
  assert.deepEqual(parseShard('/4', { JOB_COMPLETION_INDEX: '2' }), { index: 2, count: 4 });
  assert.throws(() => parseShard('/4', {}), /JOB_COMPLETION_INDEX.*not set/);
  assert.throws(() => parseShard('3/3'), /I must be below N/);
  assert.throws(() => parseShard('a/b'), /--shard must be I\/N/);
});

test(
  'queue: 2 workers, one SIGKILLed mid-job: each cell once, summary equals the local sharded run, re-submit adds nothing',
  { skip: redisMissing ?? false, timeout: 600_000 },
  async () => {
    const d = tmpDir();
    const file = sweepFile(d);
    // the local run, in two shards into one folder: together they are the whole sweep
    const local = path.join(d, 'local');
    const s0 = await sweepCommand({ file, out: local, preset: 'tiny', backend: 'wasm', quiet: true, shard: '0/2' });
    assert.deepEqual(
      s0.cells.filter((c) => fs.existsSync(path.join(c.dir, 'done.json'))).map((c) => c.index),
      [0, 2, 4],
    );
    await sweepCommand({ file, out: local, preset: 'tiny', backend: 'wasm', quiet: true, shard: '1/2' });
    assert.equal(summary(local).trim().split('\n').length, 7, 'shard 0/2 + 1/2: a summary row for each of the 6 cells');

    const redis = await startRedis();
    const workers: Proc[] = [];
    let conn: Redis | null = null;
    try {
      workers.push(worker(redis.url), worker(redis.url));
      const out = path.join(d, 'queued');
      const logs: string[] = [];
      const submitted = sweepCommand({ file, out, preset: 'tiny', backend: 'wasm', quiet: true, queue: redis.url, log: (l) => logs.push(l) });
      // kill the first worker while it runs its first job
      await until('a worker to start a job', () => /started/.test(workers[0].stderr()));
      workers[0].child.kill('SIGKILL');
      await workers[0].exit;
      const killedJob = /job (cell-[0-9a-f]+) \(cell \d+[^)]*\) started/.exec(workers[0].stderr())![1];
      assert.doesNotMatch(
        workers[0].stderr(),
        new RegExp(`${killedJob} .*\\) done`),
        'the job finished before the kill: the test did not kill mid-job',
      );
      await submitted;
      assert.match(logs.join('\n'), /6 cell\(s\): 0 already done, 0 already queued, 6 enqueued/);

      // every cell once: the live worker ran the killed worker's job again, no job finished twice
      const doneLines = (workers[1].stderr().match(/job cell-[0-9a-f]+ .*\) done, best loss/g) ?? []).map((l) => /cell-[0-9a-f]+/.exec(l)![0]);
      assert.equal(doneLines.length, 6, workers[1].stderr());
      assert.equal(new Set(doneLines).size, 6);
      assert.ok(doneLines.includes(killedJob), 'the killed job was retried on the other worker');
      assert.equal(summary(out), summary(local), 'the queued summary differs from the local run');
      const rows = summary(out)
        .trim()
        .split('\n')
        .slice(1)
        .map((r) => r.split(',').at(-1));
      assert.equal(new Set(rows).size, 6);
      for (const f of ['grid.png', 'report.html']) assert.ok(fs.existsSync(path.join(out, f)), f);
      // no temporary files: no partial folder of the dead worker, no .tmp- file, no claim
      const leftovers = walk(out).filter((f) => /\.partial-|\.tmp-|\.claim/.test(f));
      assert.deepEqual(leftovers, []);

      // submitting again adds nothing
      conn = await connectQueue(redis.url);
      const q = new Queue(QUEUE_NAME, { connection: conn });
      const before = await q.getJobCounts();
      const again: string[] = [];
      await sweepCommand({ file, out, preset: 'tiny', backend: 'wasm', quiet: true, queue: redis.url, log: (l) => again.push(l) });
      assert.match(again.join('\n'), /6 cell\(s\): 6 already done, 0 already queued, 0 enqueued/);
      assert.deepEqual(await q.getJobCounts(), before);
      assert.equal(before.completed, 6);
      // a job added again under its id (a submitter that did not see the folders) is not a new job either
      const cell = s0.cells[0];
      await q.add('cell', jobPayload({ ...cell, dir: path.join(out, path.basename(cell.dir)) }, { preset: 'tiny' }), {
        jobId: cellJobId({ hash: cell.hash, dir: path.join(out, path.basename(cell.dir)) }),
      });
      assert.deepEqual(await q.getJobCounts(), before);
      await q.close();
      // --collect writes the same summary without Redis
      fs.rmSync(path.join(out, 'summary.csv'));
      await sweepCommand({ file, out, preset: 'tiny', quiet: true, collect: true });
      assert.equal(summary(out), summary(local));
    } finally {
      conn?.disconnect();
      for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await redis.stop();
    }
  },
);

test(
  'queue: a malformed payload is rejected without crashing the worker; a model error is not retried and is in the summary',
  { skip: redisMissing ?? false, timeout: 300_000 },
  async () => {
    const d = tmpDir();
    const redis = await startRedis();
    // a worker whose models folder is empty: every real job fails with a model error
    const w = cli([
      'worker',
      '--queue',
      redis.url,
      '--models-dir',
      path.join(d, 'no-models'),
      '--backend',
      'wasm',
      '--lock-duration',
      '20',
      '--stalled-interval',
      '1',
    ]);
    const conn = await connectQueue(redis.url);
    try {
      const q = new Queue(QUEUE_NAME, { connection: conn });
      await q.add(
        'cell',
        { v: 1, index: 0, values: {}, hash: 'abc123', dir: 'relative/dir', models: {}, config: {} },
        { jobId: 'bad-1', attempts: 3 },
      );
      await q.add('cell', 'not an object', { jobId: 'bad-2', attempts: 3 });
      const state = async (id: string) => q.getJobState(id);
      await until('the malformed jobs to fail', () => /rejected job bad-2/.test(w.stderr()));
      await until('both failed', () => (w.stderr().match(/rejected job/g) ?? []).length >= 2);
      for (const id of ['bad-1', 'bad-2']) {
        assert.equal(await state(id), 'failed');
        assert.equal((await q.getJob(id))!.attemptsMade, 1, `${id} was retried`);
      }
      assert.match((await q.getJob('bad-1'))!.failedReason, /"dir" must be an absolute folder path/);
      assert.match((await q.getJob('bad-2'))!.failedReason, /the payload must be an object/);
      assert.equal(w.child.exitCode, null, 'the worker died');

      // a real sweep on that worker: each cell fails once with the model error, listed in the summary; exit 1
      const file = sweepFile(d, [0, 1]);
      const out = path.join(d, 'out');
      await assert.rejects(
        sweepCommand({ file, out, preset: 'tiny', quiet: true, queue: redis.url, log: () => {} }),
        /2 cell\(s\) of the sweep failed .*not found/i,
      );
      const rows = summary(out).trim().split('\n');
      assert.match(rows[0], /,folder,error$/);
      assert.equal(rows.length, 3, summary(out));
      for (const r of rows.slice(1)) assert.match(r, /not found/i);
      assert.equal((w.stderr().match(/failed \(not retried\)/g) ?? []).length, 2, w.stderr());
      assert.ok(/<h2>Failed cells<\/h2>/.test(fs.readFileSync(path.join(out, 'report.html'), 'utf8')));
      await q.close();
      // SIGTERM: the worker stops cleanly
      w.child.kill('SIGTERM');
      assert.deepEqual(await w.exit, { code: 0, signal: null });
    } finally {
      conn.disconnect();
      if (w.child.exitCode === null) w.child.kill('SIGKILL');
      await redis.stop();
    }
  },
);

test('queue: an unreachable Redis fails in seconds naming the URL, and creates nothing', async () => {
  const d = tmpDir();
  const file = sweepFile(d, [0]);
  const port = await freePort();
  const out = path.join(d, 'out');
  // in process (the CLI's own start-up takes seconds on a loaded machine): a refused port, then a server that accepts
  // the connection and never answers
  let t0 = Date.now();
  await assert.rejects(
    sweepCommand({ file, out, preset: 'tiny', quiet: true, queue: `redis://127.0.0.1:${port}` }),
    new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`),
  );
  assert.ok(Date.now() - t0 < 5_000, `refused: took ${Date.now() - t0} ms`);
  const silent = net.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const silentUrl = `redis://127.0.0.1:${(silent.address() as net.AddressInfo).port}/3`;
  t0 = Date.now();
  await assert.rejects(
    workerCommand({ queue: silentUrl, backend: 'cpu', quiet: true }),
    /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+\/3 \(no answer in 5 s\)/,
  );
  assert.ok(Date.now() - t0 < 8_000, `silent: took ${Date.now() - t0} ms`);
  silent.close();
  assert.ok(!fs.existsSync(out), 'the sweep folder was created');
  // the CLI: exit 1 with one line; a URL that is not redis:// is a usage error (exit 2)
  const s = cli(['sweep', file, '--out', out, '--preset', 'tiny', '--queue', `redis://127.0.0.1:${port}`]);
  const bad = cli(['worker', '--queue', 'http://127.0.0.1:6379']);
  const [rs, rb] = await Promise.all([s.exit, bad.exit]);
  assert.equal(rs.code, 1, s.stderr());
  assert.match(
    s.stderr(),
    new RegExp(`^reno: cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): is redis-server running`, 'm'),
  );
  assert.equal(rb.code, 2);
  assert.match(bad.stderr(), /--queue must be redis:\/\/HOST:PORT\[\/DB\]/);
  assert.ok(!fs.existsSync(out), 'the sweep folder was created');
});

test('examples/k8s: the Indexed Job runs reno sweep --shard /N with N = completions; the worker Deployment runs reno worker', async () => {
  const YAML = (await import('yaml')).default;
  const job = YAML.parse(fs.readFileSync(path.join(ROOT, 'examples/k8s/sweep-indexed-job.yaml'), 'utf8'));
  assert.equal(job.kind, 'Job');
  assert.equal(job.spec.completionMode, 'Indexed');
  const cmd: string[] = job.spec.template.spec.containers[0].command;
  assert.deepEqual(cmd.slice(0, 2), ['reno', 'sweep']);
  const shard = parseShard(cmd[cmd.indexOf('--shard') + 1], { JOB_COMPLETION_INDEX: String(job.spec.completions - 1) });
  assert.deepEqual(shard, { index: job.spec.completions - 1, count: job.spec.completions });
  assert.ok(job.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']);
  const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(ROOT, 'examples/k8s/worker-deployment.yaml'), 'utf8')).map((d) => d.toJS());
  const w = docs.find((d) => d.metadata.name === 'reno-worker');
  const wcmd: string[] = w.spec.template.spec.containers[0].command;
  assert.deepEqual(wcmd.slice(0, 2), ['reno', 'worker']);
  parseQueueUrl(wcmd[wcmd.indexOf('--queue') + 1]);
  assert.ok(docs.some((d) => d.kind === 'Service' && d.metadata.name === new URL(wcmd[wcmd.indexOf('--queue') + 1]).hostname));
});

test(
  'reno batch: prompts x seeds on the queue (--detach, then waiting adds nothing new); each cell equals reno generate',
  { skip: redisMissing ?? false, timeout: 300_000 },
  async () => {
    const d = tmpDir();
    const prompts = path.join(d, 'prompts.txt');
    fs.writeFileSync(prompts, '# two prompts\na red fox\n\na blue square\n');
    const overrides = { steps: 2, weights: { ...OFF, pickscore: 1 } };
    const out = path.join(d, 'batch');
    // bad input first: nothing is created
    await assert.rejects(batchCommand({ prompts, seeds: '0-1', overrides, out, preset: 'tiny', quiet: true }), /runs on a job queue: give --queue/);
    await assert.rejects(
      batchCommand({ prompts, seeds: '3-1', overrides, out, preset: 'tiny', quiet: true, queue: 'redis://127.0.0.1:1' }),
      /--seeds must be N, A-B/,
    );
    await assert.rejects(
      batchCommand({ prompts: path.join(d, 'none.txt'), overrides, out, preset: 'tiny', quiet: true, queue: 'redis://127.0.0.1:1' }),
      /cannot read --prompts .*none\.txt/,
    );
    await assert.rejects(
      batchCommand({ prompts, users: path.join(d, 'nobody.json'), overrides, out, preset: 'tiny', quiet: true, queue: 'redis://127.0.0.1:1' }),
      /nobody\.json/,
    );
    assert.ok(!fs.existsSync(out));
    const redis = await startRedis();
    let release!: () => void;
    const stop = new Promise<void>((r) => (release = r));
    let running: Promise<unknown> | null = null;
    try {
      const logs: string[] = [];
      await batchCommand({
        prompts,
        seeds: '0-1',
        overrides,
        out,
        preset: 'tiny',
        quiet: true,
        queue: redis.url,
        detach: true,
        log: (l) => logs.push(l),
      });
      assert.match(logs.join('\n'), /4 cell\(s\): 0 already done, 0 already queued, 4 enqueued/);
      running = workerCommand({ queue: redis.url, backend: 'wasm', quiet: true, preset: 'tiny', log: () => {}, stop });
      const again: string[] = [];
      const r = await batchCommand({
        prompts,
        seeds: '0-1',
        overrides,
        out,
        preset: 'tiny',
        quiet: true,
        queue: redis.url,
        log: (l) => again.push(l),
      });
      assert.match(again.join('\n'), /4 cell\(s\): 0 already done, \d already queued, 0 enqueued/);
      const rows = summary(out).trim().split('\n');
      assert.match(rows[0], /^prompt,seed,initial_loss,best_loss,best_step,best_pickscore_loss,folder$/);
      assert.deepEqual(
        rows.slice(1).map((l) => l.split(',').slice(0, 2).join(',')),
        ['a red fox,0', 'a red fox,1', 'a blue square,0', 'a blue square,1'],
      );
      // the same code path as reno generate: the same metrics for the same prompt and seed
      const g = await generateCommand({
        prompt: 'a blue square',
        seed: 1,
        preset: 'tiny',
        steps: 2,
        out: path.join(d, 'gen'),
        backend: 'wasm',
        quiet: true,
        stdout: () => {},
        overrides: { weights: { ...OFF, pickscore: 1 } },
      });
      const m = (dir: string) =>
        fs
          .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).total);
      assert.deepEqual(m(r.cells[3].dir), m(g.dir));
    } finally {
      release();
      await running;
      await redis.stop();
    }
  },
);

test(
  'reno worker: SIGTERM mid-job stops after the step, puts the job back in the queue (no attempt used, nothing left) and exits 0',
  { skip: redisMissing ?? false, timeout: 300_000 },
  async () => {
    const d = tmpDir();
    const file = path.join(d, 'long.yaml');
    fs.writeFileSync(file, `base:\n  prompt: a red fox\n  steps: 500\n  weights: ${JSON.stringify({ ...OFF, pickscore: 1 })}\ngrid: {}\n`);
    const out = path.join(d, 'out');
    const redis = await startRedis();
    const w = worker(redis.url);
    const conn = await connectQueue(redis.url);
    try {
      await sweepCommand({ file, out, preset: 'tiny', quiet: true, queue: redis.url, detach: true, log: () => {} });
      await until('the job to start', () => /started/.test(w.stderr()));
      await until(
        'its first step',
        () => fs.existsSync(out) && fs.readdirSync(out).some((n) => n.includes('.partial-') && fs.existsSync(path.join(out, n, 'metrics.jsonl'))),
      );
      w.child.kill('SIGTERM');
      assert.deepEqual(await w.exit, { code: 0, signal: null }, w.stderr());
      assert.match(w.stderr(), /stopped and put back in the queue/);
      const q = new Queue(QUEUE_NAME, { connection: conn });
      const [job] = await q.getJobs(['waiting']);
      assert.ok(job, 'the job is not waiting in the queue');
      assert.equal(job.attemptsMade, 0);
      assert.deepEqual(fs.readdirSync(out), [], 'the stopped job left files behind');
      await q.close();
    } finally {
      conn.disconnect();
      if (w.child.exitCode === null) w.child.kill('SIGKILL');
      await redis.stop();
    }
  },
);
