// `reno worker --queue redis://HOST:PORT[/DB]`: runs cell jobs (from `reno sweep --queue`, `reno batch`) until it is
// stopped. SIGTERM or Ctrl-C: no new job is taken, the running one stops after its step and goes back to the queue
// (another worker redoes it), then the worker exits 0; a second signal exits at once (the job's lock then expires
// and the stalled check hands it to another worker). See src/queue/worker.ts.
import { useBackend } from '../runtime/backend.js';
import { connectQueue, showUrl } from '../queue/connection.js';
import { startQueueWorker } from '../queue/worker.js';
import { modelPlaces } from './common.js';

export interface WorkerOptions {
  queue: string;
  concurrency?: number;
  modelDir?: string;
  modelsDir?: string;
  preset?: string;
  backend?: string;
  quiet?: boolean;
  /** seconds: a job's lock, renewed every half of it while the job runs */
  lockDuration?: number;
  /** seconds: how often this worker looks for the jobs of dead workers */
  stalledInterval?: number;
  log?: (line: string) => void;
  /** tests: resolves to stop the worker (as SIGTERM does) */
  stop?: Promise<void>;
}

export async function workerCommand(o: WorkerOptions): Promise<{ stoppedBy: string }> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const models = { preset: o.preset, modelDir: o.modelDir, modelsDir: o.modelsDir };
  if (o.preset || o.modelDir || o.modelsDir) modelPlaces(models); // bad model flags fail before anything starts
  const connection = await connectQueue(o.queue);
  let stopping = false;
  const { worker, dispose } = startQueueWorker({
    connection,
    backend: await useBackend(o.backend, { quiet: o.quiet }),
    concurrency: o.concurrency,
    models,
    log,
    lockDurationMs: o.lockDuration !== undefined ? o.lockDuration * 1000 : undefined,
    stalledIntervalMs: o.stalledInterval !== undefined ? o.stalledInterval * 1000 : undefined,
    stopping: () => stopping,
  });
  if (!o.quiet)
    log(`reno worker: waiting for jobs on ${showUrl(o.queue)} (concurrency ${o.concurrency ?? 1}, pid ${process.pid}); SIGTERM or Ctrl-C stops it`);
  const stoppedBy = await new Promise<string>((resolve) => {
    const on = (sig: string) => () => {
      if (stopping) process.exit(sig === 'SIGINT' ? 130 : 143);
      resolve(sig);
    };
    const term = on('SIGTERM');
    const int = on('SIGINT');
    process.on('SIGTERM', term);
    process.on('SIGINT', int);
    o.stop?.then(() => resolve('stop'));
    worker.on('closed', () => resolve('closed'));
  });
  stopping = true;
  if (!o.quiet) log(`reno worker: ${stoppedBy}: stopping after the current step; the running job goes back to the queue`);
  try {
    await worker.close();
  } finally {
    dispose();
    connection.disconnect();
  }
  return { stoppedBy };
}
