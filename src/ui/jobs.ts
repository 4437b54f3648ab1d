// `reno ui`'s job queue: one job at a time on the device (a generation, or the two images of a pair to rate); later
// requests wait in a queue the page shows. Every change is broadcast to the page's server-sent-event streams.
import { RenoError } from '../errors.js';

export type JobState = 'queued' | 'running' | 'done' | 'stopped' | 'failed' | 'cancelled';

export interface JobProgress {
  step: number;
  total: number;
  loss: number;
  rewards: Record<string, number>;
  best: boolean;
  bestStep: number | null;
  /** seconds left, from the mean step time so far */
  eta_s: number | null;
}

export interface Job {
  id: string;
  kind: 'generate' | 'pair';
  label: string;
  state: JobState;
  /** Stop = Ctrl-C: the run ends after its current step and keeps the best image so far */
  stopRequested: boolean;
  progress: JobProgress | null;
  /** the current best image (PNG) of a generation */
  bestPng: Buffer | null;
  dir: string | null;
  error: string | null;
  result: unknown;
  started: number | null;
}

export interface JobView {
  id: string;
  kind: Job['kind'];
  label: string;
  state: JobState;
  progress: JobProgress | null;
  dir: string | null;
  error: string | null;
  hasBest: boolean;
}

export type Broadcast = (event: string, data: unknown) => void;
type Work = (job: Job) => Promise<unknown>;

export class JobQueue {
  private jobs: Job[] = [];
  private work = new Map<string, { fn: Work; resolve: (j: Job) => void }>();
  private running: Job | null = null;
  private n = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly broadcast: Broadcast,
    private readonly log: (line: string) => void,
  ) {}

  view(j: Job): JobView {
    return { id: j.id, kind: j.kind, label: j.label, state: j.state, progress: j.progress, dir: j.dir, error: j.error, hasBest: !!j.bestPng };
  }

  /** the running job, the queued ones, and the last few finished ones */
  list(): JobView[] {
    const active = this.jobs.filter((j) => j.state === 'queued' || j.state === 'running');
    const finished = this.jobs.filter((j) => !(j.state === 'queued' || j.state === 'running')).slice(-5);
    return [...finished, ...active].map((j) => this.view(j));
  }

  get(id: string): Job | undefined {
    return this.jobs.find((j) => j.id === id);
  }

  /** Queue `fn`; the promise settles when the job has ended (done, stopped, failed or cancelled). */
  add(kind: Job['kind'], label: string, fn: Work): { job: Job; ended: Promise<Job> } {
    const job: Job = {
      id: `j${++this.n}`,
      kind,
      label,
      state: 'queued',
      stopRequested: false,
      progress: null,
      bestPng: null,
      dir: null,
      error: null,
      result: null,
      started: null,
    };
    this.jobs.push(job);
    if (this.jobs.length > 200) this.jobs.splice(0, this.jobs.length - 200);
    const ended = new Promise<Job>((resolve) => this.work.set(job.id, { fn, resolve }));
    this.changed();
    void this.next();
    return { job, ended };
  }

  stop(id: string): Job | undefined {
    const j = this.get(id);
    if (!j) return undefined;
    if (j.state === 'queued') {
      j.state = 'cancelled';
      const w = this.work.get(j.id);
      this.work.delete(j.id);
      w?.resolve(j);
    } else if (j.state === 'running') j.stopRequested = true;
    this.changed();
    return j;
  }

  /** Stop the running job, cancel the queued ones and wait until nothing runs. */
  async drain(): Promise<void> {
    for (const j of this.jobs) if (j.state === 'queued' || j.state === 'running') this.stop(j.id);
    if (this.running) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  changed(): void {
    this.broadcast('queue', this.list());
  }

  private async next(): Promise<void> {
    if (this.running) return;
    const job = this.jobs.find((j) => j.state === 'queued');
    if (!job) {
      for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    const w = this.work.get(job.id)!;
    this.work.delete(job.id);
    this.running = job;
    job.state = 'running';
    job.started = Date.now();
    this.changed();
    try {
      job.result = await w.fn(job);
      job.state = job.stopRequested ? 'stopped' : 'done';
    } catch (e) {
      job.state = 'failed';
      job.error = e instanceof Error ? e.message : String(e);
      if (!(e instanceof RenoError)) this.log(`reno: ui: job ${job.id} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    this.running = null;
    this.broadcast('done', this.view(job));
    this.changed();
    w.resolve(job);
    void this.next();
  }
}
