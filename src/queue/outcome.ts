// What `reno sweep|batch --queue/--detach/--collect` says when it is done, and its exit status: failed cells make the
// command fail (exit 1) after the summary is written; an interrupted wait exits 130 (the jobs go on running).
import * as path from 'node:path';
import { RenoError, RunStopped } from '../errors.js';
import { cellDone, cellFailure } from './cells.js';
import type { SubmitResult } from './submit.js';

export function queuedSweepOutcome(o: {
  what: string;
  again: string;
  dir: string;
  cells: { index: number; hash: string; dir: string }[];
  sub: SubmitResult | null;
  detach?: boolean;
  quiet?: boolean;
  log: (l: string) => void;
}): void {
  const where = path.relative(process.cwd(), o.dir) || o.dir;
  if (o.detach) {
    if (!o.quiet) o.log(`reno: detached; \`${o.again}\` writes the summary once the workers are done`);
    return;
  }
  if (o.sub?.interrupted)
    throw new RunStopped(`stopped waiting; the jobs go on running on the workers: \`${o.again}\` writes the summary once they are done`, 130);
  const done = o.cells.filter((c) => cellDone(c.dir, c.hash)).length;
  const failed = o.cells.filter((c) => !cellDone(c.dir, c.hash) && cellFailure(c.dir, c.hash) !== null);
  const missing = o.cells.length - done - failed.length;
  if (!o.quiet)
    o.log(
      `reno: ${done} of ${o.cells.length} cell(s) done${failed.length ? `, ${failed.length} failed` : ''}${missing ? `, ${missing} not finished yet` : ''}; wrote ${path.join(where, 'summary.csv')}`,
    );
  if (failed.length)
    throw new RenoError(
      `${failed.length} cell(s) of the ${o.what} failed (errors in ${path.join(where, 'summary.csv')}); first: cell ${failed[0].index + 1}: ${cellFailure(failed[0].dir, failed[0].hash)}`,
    );
}
