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
  // cli-progress turns the terminal's auto-wrap off while the bar runs (ESC[?7l), which cuts every line at the
  // terminal's width: a line written above the bar turns it back on meanwhile (ESC[?7h), so it wraps whole
  const log = (l: string) => {
    stream.write('\r\x1b[K\x1b[?7h' + l + '\n\x1b[?7l');
    bar.render();
  };
  // a status wider than the bar's line leaves room for goes above the bar, whole
  const fixed = `${o.label} [${' '.repeat(24)}] ${o.total}/${o.total} `.length;
  return {
    update: (v, status) => {
      if (fixed + status.length <= (stream.columns || 80)) bar.update(v, { status });
      else {
        bar.update(v, { status: '' });
        log(`${o.label} ${v}/${o.total} ${status}`);
      }
    },
    log,
    // cli-progress restores the cursor it saved when the bar started (ESC 8): with lines written above the bar since,
    // that row now holds one of them, and what follows the bar would overwrite it; save the bar's own row instead
    stop: () => {
      stream.write('\x1b7');
      bar.stop();
    },
  };
}

export interface StepTiming {
  /** steps done (this one included) */
  done: number;
  total: number;
  /** each done step's seconds */
  seconds: number[];
}

/**
 * A step's status: "loss 12.34 | score: imagereward 0.5312 aesthetic 4.8047 clip 24.31 personal 0.6120 | 1.84 s/step,
 * ETA 0:55". The weighted loss (lower is better) labelled as a loss, then EVERY active reward's score (higher is
 * better, the number `reno score` prints for that name), in the run's order, then the mean seconds per step and the
 * time left. The first step (compilation, warm-up) is left out of the mean once later steps exist.
 */
export function stepStatus(rec: { total: number; scores: Record<string, number> }, t: StepTiming): string {
  const scores = Object.entries(rec.scores).map(([k, v]) => `${k} ${fmtNum(v)}`);
  const later = t.seconds.slice(1);
  const perStep = later.length ? later.reduce((a, b) => a + b, 0) / later.length : (t.seconds[0] ?? 0);
  const left = Math.max(0, t.total - t.done);
  const timing = `${perStep.toFixed(2)} s/step, ETA ${fmtDuration(perStep * left)}`;
  return [`loss ${fmtNum(rec.total)}`, ...(scores.length ? [`score: ${scores.join(' ')}`] : []), timing].join(' | ');
}

/** 9s, 1:15, 1:02:05 */
export function fmtDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const two = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}:${two(s % 60)}`;
  return `${Math.floor(s / 3600)}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
}

export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(2) : x.toFixed(a < 10 ? 4 : 2);
}
