// The queue worker: takes cell jobs from BullMQ and runs each into its run folder with the same code path as a sweep
// cell (runGeneration). Models load once per worker and stay loaded while jobs use the same generator, personal
// options and model places (a job needing more rewards reopens the session with them). BullMQ renews each job's
// lock while the loop runs (the loop yields to the event loop every step), so a long job is not marked stalled; a
// worker that dies (SIGKILL) stops renewing, and another worker's stalled check puts the job back in the queue.
// - A malformed payload, a usage, config, data or model error fails the job at once (UnrecoverableError: not
//   retried) and records failed.json in the cell folder; anything else is retried (job attempts), failed.json
//   written on the last attempt.
// - The folder is written as <cell>.partial-<host>-<pid> and renamed to <cell> when complete, so a dead worker's
//   half-written folder is never read; the next worker removes it.
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import * as path from 'node:path';
import { modelPlaces, type ModelPlaces } from '../config/places.js';
import { personalOptions } from '../run/personal-options.js';
import { RenoError, OutputError, RunStopped } from '../errors.js';
import { writeFileAtomic } from '../util/files.js';
import { activeRewardNames, openSession, runGeneration, type Session } from '../run/session.js';
import { cellDone, partialDir, publishCell, removePartials, writeCellFailure } from './cells.js';
import { parseCellJob, type CellJob, type JobModels } from './job.js';
import { QUEUE_NAME } from './connection.js';
import * as fs from 'node:fs';
import * as os from 'node:os';

export interface QueueWorkerOptions {
  connection: Redis;
  backend: string;
  concurrency?: number;
  /** the worker's own model flags; when none is given, each job's (the submitter's) are used */
  models?: JobModels;
  log: (line: string) => void;
  /** BullMQ lock: renewed every half of it while a job runs (default 60 s) */
  lockDurationMs?: number;
  /** how often this worker looks for jobs whose worker died (default 30 s) */
  stalledIntervalMs?: number;
  /** true while the worker is stopping: the running loop stops after its step and the job is released */
  stopping?: () => boolean;
}

export interface JobResult {
  dir: string;
  skipped?: boolean;
  best?: number;
}

/** One loaded session, shared by jobs with the same key; reopened (when idle) for a job that needs another. */
class Sessions {
  private cur: { key: string; rewards: Set<string>; session: Session; users: number } | null = null;
  private opening: Promise<void> | null = null;
  private idle: (() => void)[] = [];

  async acquire(key: string, rewards: string[], open: (rewards: string[]) => Promise<Session>): Promise<{ session: Session; release: () => void }> {
    for (;;) {
      if (this.opening) {
        await this.opening;
        continue;
      }
      const c = this.cur;
      if (c && c.key === key && rewards.every((r) => c.rewards.has(r))) {
        c.users++;
        return { session: c.session, release: () => this.release(c) };
      }
      if (c && c.users > 0) {
        await new Promise<void>((r) => this.idle.push(r));
        continue;
      }
      let done!: () => void;
      this.opening = new Promise<void>((r) => (done = r));
      try {
        // a job of the same key that needs one more reward: load the union, not only the new one
        const want = c && c.key === key ? [...new Set([...c.rewards, ...rewards])] : rewards;
        c?.session.dispose();
        this.cur = null;
        const session = await open(want);
        this.cur = { key, rewards: new Set(want), session, users: 0 };
      } finally {
        this.opening = null;
        done();
      }
    }
  }

  private release(c: { users: number }): void {
    c.users--;
    if (c.users === 0) for (const r of this.idle.splice(0)) r();
  }

  dispose(): void {
    this.cur?.session.dispose();
    this.cur = null;
  }
}

/** Errors that would fail again on any worker: not retried. */
function permanent(e: unknown): boolean {
  return e instanceof RenoError && !(e instanceof OutputError) && !(e instanceof RunStopped);
}

export function startQueueWorker(o: QueueWorkerOptions): { worker: Worker; dispose: () => void } {
  const sessions = new Sessions();
  const own = o.models && (o.models.preset || o.models.modelDir || o.models.modelsDir) ? o.models : null;

  const processor = async (job: Job, token?: string): Promise<JobResult> => {
    let cell: CellJob;
    try {
      cell = parseCellJob(job.data, job.id);
    } catch (e) {
      o.log(`reno worker: rejected job ${job.id}: ${(e as Error).message}`);
      throw new UnrecoverableError((e as Error).message);
    }
    const label = `job ${job.id} (cell ${cell.index + 1}${
      Object.keys(cell.values).length
        ? ': ' +
          Object.entries(cell.values)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')
        : ''
    })`;
    if (cellDone(cell.dir, cell.hash)) {
      o.log(`reno worker: ${label} is already done in ${cell.dir}`);
      return { dir: cell.dir, skipped: true };
    }
    const lastTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    const partial = partialDir(cell.dir);
    try {
      const places: ModelPlaces = modelPlaces(own ?? cell.models);
      const active = activeRewardNames(cell.config.weights, !!cell.user).active;
      const personal = personalOptions(cell.user, cell.config.guidance, cell.config.n_ref, cell.preferenceModel);
      const key = JSON.stringify([places, cell.config.generator, personal ?? null]);
      const { session, release } = await sessions.acquire(key, active, (rewards) =>
        openSession({ places, generator: cell.config.generator, rewards, personal, backend: o.backend }),
      );
      try {
        o.log(`reno worker: ${label} started`);
        removePartials(cell.dir); // a dead worker's half-written folder
        fs.mkdirSync(partial, { recursive: true });
        const res = await runGeneration(session, cell.config, active, partial, {
          quiet: true,
          shouldStop: o.stopping,
          meta: { ...cell.meta, job: job.id, worker: `${os.hostname()} pid ${process.pid}` },
        });
        if (res.result.stopped?.reason === 'interrupted') throw new RunStopped(`${label}: the worker was stopped`);
        writeFileAtomic(path.join(partial, 'done.json'), JSON.stringify({ hash: cell.hash, values: cell.values }) + '\n');
        publishCell(partial, cell.dir);
        const best = res.result.best?.record.total;
        o.log(`reno worker: ${label} done${best !== undefined ? `, best loss ${best.toFixed(4)}` : ''}`);
        return { dir: cell.dir, best };
      } finally {
        release();
      }
    } catch (e) {
      fs.rmSync(partial, { recursive: true, force: true });
      const msg = e instanceof Error ? e.message : String(e);
      if (e instanceof RunStopped && o.stopping?.()) {
        // released: back to the queue for another worker, without counting as a failed attempt
        await job.moveToWait(token);
        o.log(`reno worker: ${label} stopped and put back in the queue`);
        throw new WaitingError();
      }
      if (permanent(e) || lastTry) {
        try {
          writeCellFailure(cell.dir, cell.hash, cell.values, msg);
        } catch (w) {
          o.log(`reno worker: ${label}: cannot record the failure: ${(w as Error).message}`);
        }
      }
      o.log(`reno worker: ${label} failed${permanent(e) ? ' (not retried)' : lastTry ? ' (no retries left)' : ' (will be retried)'}: ${msg}`);
      if (permanent(e)) throw new UnrecoverableError(msg);
      throw e;
    }
  };

  const worker = new Worker(QUEUE_NAME, processor, {
    connection: o.connection,
    concurrency: o.concurrency ?? 1,
    lockDuration: o.lockDurationMs ?? 60_000,
    stalledInterval: o.stalledIntervalMs ?? 30_000,
    maxStalledCount: 2,
  });
  worker.on('error', (e) => o.log(`reno worker: queue error: ${e.message}`));
  return { worker, dispose: () => sessions.dispose() };
}
