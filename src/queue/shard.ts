// `reno sweep FILE --shard I/N`: this process runs cell k of the sweep when k mod N == I, without Redis. Kubernetes
// Indexed Jobs give each pod its index in JOB_COMPLETION_INDEX: `--shard /N` takes I from there.
import { UsageError } from '../errors.js';

export interface Shard {
  index: number;
  count: number;
}

export function parseShard(s: string, env: NodeJS.ProcessEnv = process.env): Shard {
  const m = /^\s*(\d*)\s*\/\s*(\d+)\s*$/.exec(s);
  if (!m)
    throw new UsageError(
      `--shard must be I/N (this process runs cell k when k mod N == I), or /N to take I from $JOB_COMPLETION_INDEX; found "${s}"`,
    );
  const count = Number(m[2]);
  if (count < 1) throw new UsageError(`--shard ${s}: N must be at least 1`);
  let index: number;
  if (m[1] === '') {
    const e = env.JOB_COMPLETION_INDEX;
    if (e === undefined || !/^\d+$/.test(e.trim()))
      throw new UsageError(
        `--shard /${count} takes I from $JOB_COMPLETION_INDEX (set by Kubernetes Indexed Jobs), which is ${e === undefined ? 'not set' : `"${e}", not a number`}`,
      );
    index = Number(e.trim());
  } else index = Number(m[1]);
  if (index >= count)
    throw new UsageError(`--shard ${m[1] === '' ? `/${count} with JOB_COMPLETION_INDEX=${index}` : s}: I must be below N (0 .. ${count - 1})`);
  return { index, count };
}

/** "1h02m", "3m05s", "12s" */
export function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
