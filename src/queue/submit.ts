// Submitting cells to the queue and waiting for them: one job per cell with a deterministic id (src/queue/job.ts), so
// submitting the same cells again adds nothing (a finished cell is skipped, a queued or running one left alone, a
// failed one retried); then one progress line for the whole set (done / running / failed / waiting, ETA) until every
// job is finished or failed for good.
import { Queue, type JobsOptions } from 'bullmq';
import * as path from 'node:path';
import type { RunConfig } from '../config/run-config.js';
import { fmtDuration } from './shard.js';
import { progress } from '../util/progress.js';
import { stopFlag, withInterrupt } from '../run/interrupt.js';
import { cellDone, cellFailure, writeCellFailure } from './cells.js';
import { connectQueue, QUEUE_NAME, showUrl } from './connection.js';
import { cellJobId, JOB_VERSION, type CellJob, type JobModels } from './job.js';

export interface QueueCell {
  index: number;
  values: Record<string, unknown>;
  config: RunConfig;
  hash: string;
  dir: string;
  user?: string;
  preferenceModel?: string;
}

export interface SubmitOptions {
  url: string;
  cells: QueueCell[];
  models: JobModels;
  meta?: (c: QueueCell) => Record<string, unknown>;
  /** enqueue and return at once */
  detach?: boolean;
  quiet?: boolean;
  log: (line: string) => void;
  pollMs?: number;
  /** attempts per job for errors other than usage/config/model errors (a dead worker's job is retried regardless) */
  attempts?: number;
}

export interface SubmitResult {
  /** jobs added now (new, or a failed one retried) */
  enqueued: number;
  /** jobs already waiting or running */
  queued: number;
  /** cells already finished before submitting */
  done: number;
  /** cell index -> error, for the cells that failed for good (after waiting) */
  failed: Map<number, string>;
  /** true when the wait was interrupted (Ctrl-C): jobs go on running on the workers */
  interrupted: boolean;
}

const WEEK_S = 7 * 24 * 3600;

export function jobPayload(c: QueueCell, models: JobModels, meta?: Record<string, unknown>): CellJob {
  const abs = (p?: string) => (p === undefined ? undefined : path.resolve(p));
  return {
    v: JOB_VERSION,
    index: c.index,
    values: c.values,
    config: c.config,
    hash: c.hash,
    dir: path.resolve(c.dir),
    ...(c.user ? { user: abs(c.user) } : {}),
    ...(c.preferenceModel ? { preferenceModel: abs(c.preferenceModel) } : {}),
    models: {
      ...(models.preset ? { preset: models.preset } : {}),
      ...(models.modelDir ? { modelDir: abs(models.modelDir) } : {}),
      ...(models.modelsDir ? { modelsDir: abs(models.modelsDir) } : {}),
    },
    ...(meta ? { meta } : {}),
  };
}

export async function submitCells(o: SubmitOptions): Promise<SubmitResult> {
  const connection = await connectQueue(o.url);
  const queue = new Queue(QUEUE_NAME, { connection });
  queue.on('error', () => {}); // a dropped connection is retried; the wait below reports what it cannot read
  const res: SubmitResult = { enqueued: 0, queued: 0, done: 0, failed: new Map(), interrupted: false };
  try {
    const opts = (id: string): JobsOptions => ({
      jobId: id,
      attempts: o.attempts ?? 3,
      backoff: { type: 'fixed', delay: 2000 },
      removeOnComplete: { age: WEEK_S },
      removeOnFail: { age: WEEK_S },
    });
    const toAdd: { name: string; data: CellJob; opts: JobsOptions }[] = [];
    const waiting: { cell: QueueCell; id: string }[] = [];
    for (const c of o.cells) {
      if (cellDone(c.dir, c.hash)) {
        res.done++;
        continue;
      }
      const id = cellJobId(c);
      waiting.push({ cell: c, id });
      const job = await queue.getJob(id);
      const state = job ? await job.getState() : 'unknown';
      if (state === 'failed') {
        await job!.retry('failed'); // submitting again retries a failed cell, as a local rerun redoes it
        res.enqueued++;
      } else if (state === 'completed' || state === 'unknown') {
        if (job) await job.remove(); // finished, but its folder is gone: run it again
        toAdd.push({ name: 'cell', data: jobPayload(c, o.models, o.meta?.(c)), opts: opts(id) });
      } else res.queued++;
    }
    for (let i = 0; i < toAdd.length; i += 500) await queue.addBulk(toAdd.slice(i, i + 500));
    res.enqueued += toAdd.length;
    o.log(`reno: ${o.cells.length} cell(s): ${res.done} already done, ${res.queued} already queued, ${res.enqueued} enqueued on ${showUrl(o.url)}`);
    if (o.detach || !waiting.length) return res;
    await waitForJobs(queue, waiting, o, res);
    return res;
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

async function waitForJobs(queue: Queue, jobs: { cell: QueueCell; id: string }[], o: SubmitOptions, res: SubmitResult): Promise<void> {
  const total = jobs.length;
  const bar = progress({ total, label: 'queue', quiet: o.quiet });
  const flag = stopFlag();
  const start = Date.now();
  const open = new Map(jobs.map((j) => [j.id, j]));
  let finished = 0;
  let last = '';
  await withInterrupt(
    flag,
    async () => {
      while (open.size && !flag.requested) {
        const counts = { running: 0, waiting: 0 };
        const ids = [...open.keys()];
        const states = await Promise.all(ids.map((id) => queue.getJobState(id)));
        for (let i = 0; i < ids.length; i++) {
          const j = open.get(ids[i])!;
          const s = states[i];
          if (s === 'completed' || (s === 'unknown' && cellDone(j.cell.dir, j.cell.hash))) {
            open.delete(ids[i]);
            finished++;
            if (!cellDone(j.cell.dir, j.cell.hash)) res.failed.set(j.cell.index, `the job finished but ${j.cell.dir} holds no finished run`);
          } else if (s === 'failed' || s === 'unknown') {
            open.delete(ids[i]);
            finished++;
            const reason = s === 'failed' ? ((await queue.getJob(ids[i]))?.failedReason ?? 'failed') : 'the job was removed from the queue';
            const err = cellFailure(j.cell.dir, j.cell.hash) ?? reason;
            if (!cellFailure(j.cell.dir, j.cell.hash)) writeCellFailure(j.cell.dir, j.cell.hash, j.cell.values, err);
            res.failed.set(j.cell.index, err);
          } else if (s === 'active') counts.running++;
          else counts.waiting++;
        }
        const ok = finished - res.failed.size;
        const elapsed = Date.now() - start;
        const eta = finished ? fmtDuration(((total - finished) * elapsed) / finished) : '?';
        const status = `done ${ok} running ${counts.running} failed ${res.failed.size} waiting ${counts.waiting}${open.size ? ` | ETA ${eta}` : ''}`;
        if (status.replace(/ \| ETA.*/, '') !== last.replace(/ \| ETA.*/, '')) bar.update(finished, status);
        last = status;
        if (open.size) await new Promise((r) => setTimeout(r, o.pollMs ?? 1000));
      }
    },
    o.log,
  );
  bar.stop();
  if (flag.requested) res.interrupted = true;
}
