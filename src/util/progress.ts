// Progress for long work: a cli-progress bar on a TTY, one plain line per step otherwise, nothing with --quiet.
import cliProgress from 'cli-progress';

export interface Progress {
  /** Advance to `value` (of total) with a short status text. */
  update(value: number, status: string): void;
  /** A line that must not be overwritten by the bar (warnings, results). */
  log(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  total: number;
  label: string;
  quiet?: boolean;
  /** defaults to process.stderr */
  stream?: NodeJS.WriteStream;
  /** force the plain line mode (tests) */
  plain?: boolean;
}

export function progress(o: ProgressOptions): Progress {
  const stream = o.stream ?? process.stderr;
  if (o.quiet) return { update() {}, log: (l) => stream.write(l + '\n'), stop() {} };
  if (o.plain || !stream.isTTY) {
    return {
      update: (v, status) => stream.write(`${o.label} ${v}/${o.total} ${status}\n`),
      log: (l) => stream.write(l + '\n'),
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: `${o.label} [{bar}] {value}/{total} {status}`, stream, hideCursor: false, clearOnComplete: false, barsize: 24 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(o.total, 0, { status: '' });
  return {
    update: (v, status) => bar.update(v, { status }),
    log: (l) => {
      stream.write('\r\x1b[K' + l + '\n');
      bar.render();
    },
    stop: () => bar.stop(),
  };
}

/** "total 12.34 | pickscore 21.9 imagereward 1.87" with the leading rewards (largest weighted contribution). */
export function stepStatus(total: number, rewards: Record<string, number>, weights: Record<string, number>, n = 3): string {
  const lead = Object.entries(rewards)
    .sort((a, b) => Math.abs((weights[b[0]] ?? 1) * b[1]) - Math.abs((weights[a[0]] ?? 1) * a[1]))
    .slice(0, n)
    .map(([k, v]) => `${k} ${fmtNum(v)}`);
  return `loss ${fmtNum(total)}${lead.length ? ' | ' + lead.join(' ') : ''}`;
}

export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(2) : x.toFixed(a < 10 ? 4 : 2);
}
