// `reno sweep sweep.yaml`: a grid over config keys (weights.personal, seed, guidance, prompt, ...). Each cell is a
// normal run folder inside the sweep folder; a finished cell (done.json with its config hash) is skipped when the
// sweep is rerun, a half-finished one is redone. Writes summary.csv, a labelled grid PNG and report.html.
// - Every cell's config, active rewards and models are checked before the sweep folder is created.
// - An empty grid is one cell: the base config.
// - Cells that share the generator and the personal reward's options (guidance, n_ref) share one loaded session.
// - Ctrl-C: the running cell stops after its step (its folder keeps the best image so far, without done.json, so a
//   rerun redoes it), the summary is written, and the command fails with exit 130.
// - Two processes on one folder share the work: a cell is run only under its claim, <cell folder>.claim, created
//   with O_EXCL and holding pid, host and start (src/util/lockfile.ts). A cell claimed by another live process is
//   skipped with a line on stderr; a claim whose pid is dead on this host is taken over. When only cells claimed
//   by others remain, the process waits for them (taking over any whose process dies) so that every process writes
//   a complete summary; Ctrl-C ends the wait.
// - --queue URL runs the cells as jobs of `reno worker`s (src/queue/), --collect only writes the summary from the
//   finished folders, --shard I/N runs only cells k with k mod N == I. Cells that failed on a worker (failed.json)
//   are listed in the summary with their error.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { useBackend } from '../runtime/backend.js';
import { resolveConfig, SCHEMA, validatePartial, type RunConfig } from '../config/run-config.js';
import { GENERATORS } from '../../generators/index.js';
import { checkRewardModels } from '../../rewards/load.js';
import { readHistory } from '../data/history.js';
import { ConfigError, RenoError, RunStopped, UsageError } from '../errors.js';
import { getModel } from '../config/models.js';
import { imageGrid } from '../report/charts.js';
import { escapeXml, page } from '../report/html.js';
import { slugify, writeFileAtomic } from '../util/files.js';
import { stopFlag, withInterrupt } from '../run/interrupt.js';
import { describeOwner, tryLock } from '../util/lockfile.js';
import { activeRewardNames, openSession, rewardContext, runGeneration, type Session } from '../run/session.js';
import { requireModel } from '../weights/hub.js';
import { modelPlaces, personalOptions, type ModelPlaces } from './common.js';
import { cellFailure } from '../queue/cells.js';
import { parseShard } from '../queue/shard.js';
import { submitCells } from '../queue/submit.js';
import { queuedSweepOutcome } from '../queue/outcome.js';

export interface SweepSpec {
  /** config keys layered over configs/default.yaml for every cell */
  base: Record<string, unknown>;
  /** key -> values; keys are config keys, dotted for weights (weights.personal) */
  grid: [string, unknown[]][];
  user?: string;
  /** preference checkpoint folder for the personal reward (relative to the sweep file) */
  preferenceModel?: string;
  out?: string;
}

export interface SweepOptions {
  file: string;
  out?: string;
  modelDir?: string;
  modelsDir?: string;
  preset?: string;
  backend?: string;
  quiet?: boolean;
  log?: (l: string) => void;
  /** tests: stop after this many cells have run in this call */
  stopAfter?: number;
  /** redis://HOST:PORT[/DB]: run the cells as jobs of `reno worker`s */
  queue?: string;
  /** with queue: enqueue and return */
  detach?: boolean;
  /** only write the summary from the finished cell folders */
  collect?: boolean;
  /** "I/N" (or "/N": I from $JOB_COMPLETION_INDEX): run only cells k with k mod N == I */
  shard?: string;
}

export interface SweepCell {
  index: number;
  values: Record<string, unknown>;
  config: RunConfig;
  hash: string;
  dir: string;
  skipped: boolean;
}

function setDotted(obj: Record<string, unknown>, key: string, v: unknown): void {
  const parts = key.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
  o[parts[parts.length - 1]] = v;
}

export function readSweep(file: string): SweepSpec {
  let raw: unknown;
  try {
    raw = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`cannot read sweep ${file}: ${(e as Error).message}`);
  }
  if (!raw || typeof raw !== 'object') throw new ConfigError(`${file}: expected a mapping with "grid"`);
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r))
    if (!['base', 'grid', 'user', 'preference_model', 'out'].includes(k))
      throw new ConfigError(`${file}: unknown key "${k}" (known: base, grid, user, preference_model, out)`);
  const base = (r.base ?? {}) as Record<string, unknown>;
  validatePartial(base, `${file} base`);
  if (!r.grid || typeof r.grid !== 'object' || Array.isArray(r.grid))
    throw new ConfigError(`${file}: "grid" must map config keys to lists of values`);
  const grid: [string, unknown[]][] = [];
  for (const [k, vs] of Object.entries(r.grid as Record<string, unknown>)) {
    if (!Array.isArray(vs) || !vs.length) throw new ConfigError(`${file}: grid.${k} must be a non-empty list`);
    const top = k.split('.')[0];
    if (!(top in SCHEMA)) throw new ConfigError(`${file}: grid key "${k}" is not a config key (known: ${Object.keys(SCHEMA).join(', ')})`);
    for (const v of vs) {
      const probe: Record<string, unknown> = {};
      setDotted(probe, k, v);
      validatePartial(probe, `${file} grid.${k}`);
    }
    grid.push([k, vs]);
  }
  const dir = path.dirname(path.resolve(file));
  return {
    base,
    grid,
    user: typeof r.user === 'string' ? path.resolve(dir, r.user) : undefined,
    preferenceModel: typeof r.preference_model === 'string' ? path.resolve(dir, r.preference_model) : undefined,
    out: typeof r.out === 'string' ? path.resolve(dir, r.out) : undefined,
  };
}

/** Every combination of the grid, in row-major order of the keys as written. */
export function cells(spec: SweepSpec): Record<string, unknown>[] {
  let acc: Record<string, unknown>[] = [{}];
  for (const [k, vs] of spec.grid) acc = acc.flatMap((c) => vs.map((v) => ({ ...c, [k]: v })));
  return acc;
}

export function configHash(config: RunConfig, extra: unknown): string {
  const canon = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v as object)
            .sort()
            .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
        )
      : v;
  return createHash('sha256')
    .update(JSON.stringify(canon({ config, extra })))
    .digest('hex')
    .slice(0, 12);
}

const fmtValues = (v: Record<string, unknown>) =>
  Object.entries(v)
    .map(([k, x]) => `${k.replace(/^weights\./, '')}=${x}`)
    .join(' ');

/**
 * Every cell's resolved config, its active rewards and every model it needs, checked before anything is created:
 * a bad sweep fails with the file, cell and key named and leaves no folder behind.
 */
export function planSweep(o: SweepOptions, spec: SweepSpec, places: ModelPlaces, dir: string): SweepCell[] {
  const planned: SweepCell[] = cells(spec).map((values, index) => {
    const overrides: Record<string, unknown> = JSON.parse(JSON.stringify(spec.base));
    for (const [k, v] of Object.entries(values)) setDotted(overrides, k, v);
    const where = `${o.file}: cell ${index + 1}${Object.keys(values).length ? ` (${fmtValues(values)})` : ''}`;
    let config: RunConfig;
    try {
      config = resolveConfig({ overrides });
    } catch (e) {
      if (e instanceof RenoError) e.message = `${where}: ${e.message}`;
      throw e;
    }
    if (!config.prompt.trim()) throw new ConfigError(`${o.file}: cell ${index + 1} has no prompt (set base.prompt or grid.prompt)`);
    const hash = configHash(config, { user: spec.user ?? null, smoke: places.smokeTest, generatorDir: o.modelDir ?? null });
    return { index, values, config, hash, dir: path.join(dir, `cell-${String(index).padStart(3, '0')}-${hash}`), skipped: false };
  });
  const checked = new Set<string>();
  for (const c of planned) {
    const where = `${o.file}: cell ${c.index + 1}${Object.keys(c.values).length ? ` (${fmtValues(c.values)})` : ''}`;
    try {
      const active = activeRewardNames(c.config.weights, !!spec.user).active;
      const key = JSON.stringify([c.config.generator, active]);
      if (checked.has(key)) continue;
      checked.add(key);
      const gen = GENERATORS[c.config.generator];
      if (!gen) throw new ConfigError(`unknown generator "${c.config.generator}" (known: ${Object.keys(GENERATORS).join(', ')})`);
      requireModel(getModel(gen.model), places);
      checkRewardModels(
        active,
        rewardContext(
          places,
          personalOptions(spec.user, c.config.guidance, c.config.n_ref, spec.preferenceModel, {
            mode: c.config.personal_model,
            tower: c.config.personal_tower,
          }),
        ),
      );
    } catch (e) {
      if (e instanceof RenoError) e.message = `${where}: ${e.message}`;
      throw e;
    }
  }
  if (spec.user) readHistory(spec.user); // a missing or broken history fails here, not after the folder exists
  return planned;
}

/** Cells that can share one loaded session: same generator and same personal-reward options (guidance, n_ref). */
function sessionKey(spec: SweepSpec, c: SweepCell): string {
  return JSON.stringify([
    c.config.generator,
    c.config.personal_model,
    c.config.personal_tower,
    personalOptions(spec.user, c.config.guidance, c.config.n_ref, spec.preferenceModel) ?? null,
  ]);
}

const claimFile = (c: SweepCell) => `${c.dir}.claim`;

export async function sweepCommand(o: SweepOptions): Promise<{ dir: string; cells: SweepCell[] }> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const modes = [o.queue && '--queue', o.collect && '--collect', o.shard !== undefined && '--shard'].filter(Boolean);
  if (modes.length > 1) throw new UsageError(`${modes.join(' and ')} cannot be used together`);
  if (o.detach && !o.queue) throw new UsageError('--detach needs --queue (it returns once the cells are enqueued)');
  const shard = o.shard !== undefined ? parseShard(o.shard) : null;
  const spec = readSweep(o.file);
  const places = modelPlaces(o);
  const dir = path.resolve(o.out ?? spec.out ?? path.join(process.cwd(), 'outputs', `sweep-${slugify(path.basename(o.file, path.extname(o.file)))}`));
  const planned = planSweep(o, spec, places, dir);
  if (o.queue || o.collect) {
    const meta = (c: { values: Record<string, unknown> }) => ({ sweep: path.resolve(o.file), cell: c.values });
    const sub = o.queue
      ? await submitCells({
          url: o.queue,
          cells: planned.map((c) => ({ ...c, user: spec.user, preferenceModel: spec.preferenceModel })),
          models: { preset: o.preset, modelDir: o.modelDir, modelsDir: o.modelsDir },
          meta,
          detach: o.detach,
          quiet: o.quiet,
          log,
        })
      : null;
    if (!sub?.interrupted && !o.detach) await writeSweepSummary(dir, spec, planned);
    queuedSweepOutcome({ what: 'sweep', again: `reno sweep ${o.file} --collect`, dir, cells: planned, sub, detach: o.detach, quiet: o.quiet, log });
    return { dir, cells: planned };
  }
  fs.mkdirSync(dir, { recursive: true });
  const done = (c: SweepCell) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(c.dir, 'done.json'), 'utf8')).hash === c.hash;
    } catch {
      return false;
    }
  };
  for (const c of planned) c.skipped = done(c);
  const todo = planned.filter((c) => !c.skipped && (!shard || c.index % shard.count === shard.index));
  // cells that share a session run one after another: a session per (generator, personal options), holding the
  // union of the rewards its cells use, so models load once per distinct combination
  const keys = [...new Set(todo.map((c) => sessionKey(spec, c)))];
  const order = keys.flatMap((k) => todo.filter((c) => sessionKey(spec, c) === k));
  const flag = stopFlag();
  let ran = 0;
  if (todo.length && !(o.stopAfter !== undefined && o.stopAfter <= 0)) {
    const backend = await useBackend(o.backend, { quiet: o.quiet });
    let current: { key: string; session: Session } | null = null;
    const sessionFor = async (c: SweepCell): Promise<Session> => {
      const key = sessionKey(spec, c);
      if (current?.key === key) return current.session;
      current?.session.dispose();
      current = null;
      const group = todo.filter((t) => sessionKey(spec, t) === key);
      const rewards = [...new Set(group.flatMap((t) => activeRewardNames(t.config.weights, !!spec.user).active))];
      const personal = personalOptions(spec.user, c.config.guidance, c.config.n_ref, spec.preferenceModel, {
        mode: c.config.personal_model,
        tower: c.config.personal_tower,
      }); // paths already absolute
      const session = await openSession({ places, generator: c.config.generator, rewards, personal, backend });
      current = { key, session };
      return session;
    };
    const told = new Set<number>();
    await withInterrupt(
      flag,
      async () => {
        try {
          for (;;) {
            const others: SweepCell[] = [];
            for (const c of order) {
              if (flag.requested || (o.stopAfter !== undefined && ran >= o.stopAfter)) return;
              if (done(c)) continue;
              const claim = tryLock(claimFile(c));
              if (!claim.ok) {
                // another live process runs this cell: leave it alone
                others.push(c);
                if (!told.has(c.index)) log(`reno: cell ${c.index + 1} is being run by ${describeOwner(claim.owner)}; skipping it here`);
                told.add(c.index);
                continue;
              }
              try {
                if (done(c)) continue; // finished by another process since we looked
                const session = await sessionFor(c);
                fs.rmSync(c.dir, { recursive: true, force: true }); // a half-finished cell is redone from scratch
                fs.mkdirSync(c.dir, { recursive: true });
                const active = activeRewardNames(c.config.weights, !!spec.user).active;
                const label = `cell ${c.index + 1}/${planned.length}`;
                const res = await runGeneration(session, c.config, active, c.dir, {
                  quiet: o.quiet,
                  label,
                  shouldStop: () => flag.requested,
                  meta: { sweep: path.resolve(o.file), cell: c.values },
                });
                // an interrupted cell keeps its best image so far but is not done: a rerun redoes it
                if (res.result.stopped?.reason === 'interrupted') return;
                writeFileAtomic(path.join(c.dir, 'done.json'), JSON.stringify({ hash: c.hash, values: c.values }) + '\n');
                ran++;
              } finally {
                claim.release();
              }
            }
            if (!others.some((c) => !done(c))) return;
            // the remaining cells are run by other processes: wait for them (or take a cell over if its process dies)
            // so that the summary written below is complete
            current?.session.dispose();
            current = null;
            log(
              `reno: waiting for ${others.filter((c) => !done(c)).length} cell(s) run by other processes before writing the summary (Ctrl-C stops waiting; a claim of a process on another host that is gone must be deleted by hand: ${path.basename(claimFile(others[0]))})`,
            );
            while (!flag.requested && others.some((c) => !done(c) && !tryLockFree(claimFile(c)))) await new Promise((r) => setTimeout(r, 500));
          }
        } finally {
          (current as { session: Session } | null)?.session.dispose();
        }
      },
      log,
    );
  }
  await writeSweepSummary(dir, spec, planned);
  const finished = planned.filter(done).length;
  if (flag.requested)
    throw new RunStopped(
      `sweep interrupted: ${finished} of ${planned.length} cells done (summary in ${path.relative(process.cwd(), dir) || dir}); run the same command again to resume`,
      130,
    );
  const before = planned.filter((c) => c.skipped).length;
  const byOthers = finished - ran - before;
  if (!o.quiet)
    log(
      `reno: ${before} cell(s) already done, ${ran} run now${byOthers > 0 ? `, ${byOthers} by other processes` : ''}; wrote ${path.relative(process.cwd(), dir) || dir}`,
    );
  return { dir, cells: planned };
}

/** True when the claim `file` is free (absent or stale), without taking it. */
function tryLockFree(file: string): boolean {
  const a = tryLock(file);
  if (a.ok) a.release();
  return a.ok;
}

function lastRecord(cellDir: string): { total: number; rewards: Record<string, number>; best: Record<string, unknown> | null; init: number } | null {
  try {
    const lines = fs
      .readFileSync(path.join(cellDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const best = lines.reduce((a, b) => (b.total < a.total ? b : a));
    return { total: best.total, rewards: best.rewards, best, init: lines[0].total };
  } catch {
    return null;
  }
}

export async function writeSweepSummary(dir: string, spec: SweepSpec, planned: SweepCell[]): Promise<void> {
  const keys = spec.grid.map(([k]) => k);
  const finished = planned.filter((c) => fs.existsSync(path.join(c.dir, 'done.json')));
  const failed = planned.filter((c) => !finished.includes(c) && cellFailure(c.dir, c.hash) !== null);
  const rewardNames = [...new Set(finished.flatMap((c) => Object.keys(lastRecord(c.dir)?.rewards ?? {})))];
  const esc = (v: unknown) => {
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  // cells that failed on a queue worker (failed.json) are listed with their error, in an error column
  const rows = [
    [
      ...keys,
      'initial_loss',
      'best_loss',
      'best_step',
      ...rewardNames.map((n) => `best_${n}_loss`),
      'folder',
      ...(failed.length ? ['error'] : []),
    ].join(','),
  ];
  for (const c of planned) {
    if (!finished.includes(c) && !failed.includes(c)) continue;
    const m = finished.includes(c) ? lastRecord(c.dir) : null;
    rows.push(
      [
        ...keys.map((k) => esc(c.values[k])),
        m?.init ?? '',
        m?.total ?? '',
        m?.best?.step ?? '',
        ...rewardNames.map((n) => m?.rewards[n] ?? ''),
        esc(path.basename(c.dir)),
        ...(failed.includes(c) ? [esc(cellFailure(c.dir, c.hash)!.replace(/\s*\n\s*/g, ' '))] : failed.length ? [''] : []),
      ].join(','),
    );
  }
  writeFileAtomic(path.join(dir, 'summary.csv'), rows.join('\n') + '\n');
  // grid: rows = the first key's values, columns = every combination of the other keys
  // an empty grid is one cell, the base config: one row, one column
  const [rowKey, rowVals] = spec.grid[0] ?? [null, [null]];
  const colCombos = cells({ ...spec, grid: spec.grid.slice(1) });
  const fmt = (v: Record<string, unknown>) => fmtValues(v) || (rowKey === null ? 'base config' : 'all');
  const gridCells = rowVals.map((rv) =>
    colCombos.map((cv) => {
      const c = planned.find((p) => (rowKey === null || p.values[rowKey] === rv) && Object.entries(cv).every(([k, x]) => p.values[k] === x));
      const f = c && path.join(c.dir, 'best.png');
      return f && fs.existsSync(f) && fs.existsSync(path.join(c.dir, 'done.json'))
        ? { png: fs.readFileSync(f), label: `loss ${lastRecord(c.dir)?.total.toFixed(3) ?? ''}` }
        : null;
    }),
  );
  const png = await imageGrid(gridCells, {
    rowLabels: rowVals.map((v) => (rowKey === null ? '' : `${rowKey.replace(/^weights\./, '')}=${v}`)),
    colLabels: colCombos.map(fmt),
    title: keys.length ? `sweep over ${keys.join(', ')}` : 'sweep of the base config (empty grid)',
  });
  writeFileAtomic(path.join(dir, 'grid.png'), png);
  const table = `<table><tr>${[...keys, 'initial loss', 'best loss', ''].map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr>${finished
    .map((c) => {
      const m = lastRecord(c.dir);
      return `<tr>${keys.map((k) => `<td>${escapeXml(String(c.values[k]))}</td>`).join('')}<td>${m?.init.toFixed(4)}</td><td>${m?.total.toFixed(4)}</td><td><a href="${escapeXml(path.basename(c.dir))}/report.html">run</a></td></tr>`;
    })
    .join(
      '',
    )}</table>${failed.length ? `<h2>Failed cells</h2><table>${failed.map((c) => `<tr>${keys.map((k) => `<td>${escapeXml(String(c.values[k]))}</td>`).join('')}<td>${escapeXml(cellFailure(c.dir, c.hash) ?? '')}</td></tr>`).join('')}</table>` : ''}`;
  const body = `<h1>reno sweep</h1><p>${finished.length} of ${planned.length} cells finished${failed.length ? `, ${failed.length} failed` : ''}.</p><p><img src="grid.png" alt="sweep grid" style="max-width:100%"></p>${table}<h2>Sweep</h2><pre>${escapeXml(YAML.stringify({ base: spec.base, grid: Object.fromEntries(spec.grid) }))}</pre>`;
  writeFileAtomic(path.join(dir, 'report.html'), page('reno sweep', body));
}
