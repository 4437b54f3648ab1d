// `reno sweep sweep.yaml`: a grid over config keys (weights.personal, seed, guidance, prompt, ...). Each cell is a
// normal run folder inside the sweep folder; a finished cell (done.json with its config hash) is skipped when the
// sweep is rerun, a half-finished one is redone. Writes summary.csv, a labelled grid PNG and report.html.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { useBackend } from '../backend.js';
import { resolveConfig, SCHEMA, validatePartial, type RunConfig } from '../config/run-config.js';
import { ConfigError } from '../errors.js';
import { imageGrid } from '../report/plot-png.js';
import { escapeXml } from '../report/svg.js';
import { page } from '../report/html.js';
import { slugify, writeFileAtomic } from '../run/files.js';
import { stopFlag, withInterrupt } from '../run/interrupt.js';
import { activeRewardNames, openSession, runGeneration } from '../run/session.js';
import { modelPlaces, personalOptions } from './common.js';

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
  for (const k of Object.keys(r)) if (!['base', 'grid', 'user', 'preference_model', 'out'].includes(k)) throw new ConfigError(`${file}: unknown key "${k}" (known: base, grid, user, preference_model, out)`);
  const base = (r.base ?? {}) as Record<string, unknown>;
  validatePartial(base, `${file} base`);
  if (!r.grid || typeof r.grid !== 'object' || Array.isArray(r.grid)) throw new ConfigError(`${file}: "grid" must map config keys to lists of values`);
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
  return { base, grid, user: typeof r.user === 'string' ? path.resolve(dir, r.user) : undefined, preferenceModel: typeof r.preference_model === 'string' ? path.resolve(dir, r.preference_model) : undefined, out: typeof r.out === 'string' ? path.resolve(dir, r.out) : undefined };
}

/** Every combination of the grid, in row-major order of the keys as written. */
export function cells(spec: SweepSpec): Record<string, unknown>[] {
  let acc: Record<string, unknown>[] = [{}];
  for (const [k, vs] of spec.grid) acc = acc.flatMap((c) => vs.map((v) => ({ ...c, [k]: v })));
  return acc;
}

export function configHash(config: RunConfig, extra: unknown): string {
  const canon = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])])) : v;
  return createHash('sha256').update(JSON.stringify(canon({ config, extra }))).digest('hex').slice(0, 12);
}

export async function sweepCommand(o: SweepOptions): Promise<{ dir: string; cells: SweepCell[] }> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const spec = readSweep(o.file);
  const places = modelPlaces(o);
  const dir = path.resolve(o.out ?? spec.out ?? path.join(process.cwd(), 'outputs', `sweep-${slugify(path.basename(o.file, path.extname(o.file)))}`));
  fs.mkdirSync(dir, { recursive: true });
  const planned: SweepCell[] = cells(spec).map((values, index) => {
    const overrides: Record<string, unknown> = JSON.parse(JSON.stringify(spec.base));
    for (const [k, v] of Object.entries(values)) setDotted(overrides, k, v);
    const config = resolveConfig({ overrides });
    if (!config.prompt.trim()) throw new ConfigError(`${o.file}: cell ${index} has no prompt (set base.prompt or grid.prompt)`);
    const hash = configHash(config, { user: spec.user ?? null, smoke: places.smokeTest, generatorDir: o.modelDir ?? null });
    return { index, values, config, hash, dir: path.join(dir, `cell-${String(index).padStart(3, '0')}-${hash}`), skipped: false };
  });
  const done = (c: SweepCell) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(c.dir, 'done.json'), 'utf8')).hash === c.hash;
    } catch {
      return false;
    }
  };
  const todo = planned.filter((c) => !done(c));
  for (const c of planned) c.skipped = !todo.includes(c);
  if (todo.length) {
    const rewards = [...new Set(todo.flatMap((c) => activeRewardNames(c.config.weights, !!spec.user).active))];
    const backend = await useBackend(o.backend, { quiet: o.quiet });
    // one session per guidance value: the personal reward is prepared for like or dislike
    const flag = stopFlag();
    let ran = 0;
    await withInterrupt(flag, async () => {
      for (const guidance of [...new Set(todo.map((c) => c.config.guidance))]) {
        const personal = personalOptions(spec.user, guidance, todo[0].config.n_ref, spec.preferenceModel); // paths already absolute
        const session = await openSession({ places, generator: todo[0].config.generator, rewards, personal, backend });
        try {
          for (const c of todo.filter((t) => t.config.guidance === guidance)) {
            if (flag.requested || (o.stopAfter !== undefined && ran >= o.stopAfter)) return;
            fs.rmSync(c.dir, { recursive: true, force: true }); // a half-finished cell is redone from scratch
            fs.mkdirSync(c.dir, { recursive: true });
            const active = activeRewardNames(c.config.weights, !!spec.user).active;
            const label = `cell ${c.index + 1}/${planned.length}`;
            const res = await runGeneration(session, c.config, active, c.dir, { quiet: o.quiet, label, shouldStop: () => flag.requested, meta: { sweep: path.resolve(o.file), cell: c.values } });
            if (res.result.stopped?.reason === 'interrupted') return;
            writeFileAtomic(path.join(c.dir, 'done.json'), JSON.stringify({ hash: c.hash, values: c.values }) + '\n');
            ran++;
          }
        } finally {
          session.dispose();
        }
      }
    }, log);
  }
  await writeSweepSummary(dir, spec, planned);
  if (!o.quiet) log(`reno: ${planned.filter((c) => c.skipped).length} cell(s) already done, ${planned.filter((c) => !c.skipped && done(c)).length} run now; wrote ${path.relative(process.cwd(), dir) || dir}`);
  return { dir, cells: planned };
}

function lastRecord(cellDir: string): { total: number; rewards: Record<string, number>; best: Record<string, unknown> | null; init: number } | null {
  try {
    const lines = fs.readFileSync(path.join(cellDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const best = lines.reduce((a, b) => (b.total < a.total ? b : a));
    return { total: best.total, rewards: best.rewards, best, init: lines[0].total };
  } catch {
    return null;
  }
}

async function writeSweepSummary(dir: string, spec: SweepSpec, planned: SweepCell[]): Promise<void> {
  const keys = spec.grid.map(([k]) => k);
  const finished = planned.filter((c) => fs.existsSync(path.join(c.dir, 'done.json')));
  const rewardNames = [...new Set(finished.flatMap((c) => Object.keys(lastRecord(c.dir)?.rewards ?? {})))];
  const esc = (v: unknown) => {
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const rows = [[...keys, 'initial_loss', 'best_loss', 'best_step', ...rewardNames.map((n) => `best_${n}_loss`), 'folder'].join(',')];
  for (const c of finished) {
    const m = lastRecord(c.dir);
    rows.push([...keys.map((k) => esc(c.values[k])), m?.init ?? '', m?.total ?? '', m?.best?.step ?? '', ...rewardNames.map((n) => m?.rewards[n] ?? ''), esc(path.basename(c.dir))].join(','));
  }
  writeFileAtomic(path.join(dir, 'summary.csv'), rows.join('\n') + '\n');
  // grid: rows = the first key's values, columns = every combination of the other keys
  const [rowKey, rowVals] = spec.grid[0];
  const colCombos = cells({ ...spec, grid: spec.grid.slice(1) });
  const fmt = (v: Record<string, unknown>) => Object.entries(v).map(([k, x]) => `${k.replace(/^weights\./, '')}=${x}`).join(' ') || 'all';
  const gridCells = rowVals.map((rv) =>
    colCombos.map((cv) => {
      const c = planned.find((p) => p.values[rowKey] === rv && Object.entries(cv).every(([k, x]) => p.values[k] === x));
      const f = c && path.join(c.dir, 'best.png');
      return f && fs.existsSync(f) && fs.existsSync(path.join(c.dir, 'done.json')) ? { png: fs.readFileSync(f), label: `loss ${lastRecord(c.dir)?.total.toFixed(3) ?? ''}` } : null;
    }),
  );
  const png = await imageGrid(gridCells, { rowLabels: rowVals.map((v) => `${rowKey.replace(/^weights\./, '')}=${v}`), colLabels: colCombos.map(fmt), title: `sweep over ${keys.join(', ')}` });
  writeFileAtomic(path.join(dir, 'grid.png'), png);
  const table = `<table><tr>${[...keys, 'initial loss', 'best loss', ''].map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr>${finished
    .map((c) => {
      const m = lastRecord(c.dir);
      return `<tr>${keys.map((k) => `<td>${escapeXml(String(c.values[k]))}</td>`).join('')}<td>${m?.init.toFixed(4)}</td><td>${m?.total.toFixed(4)}</td><td><a href="${escapeXml(path.basename(c.dir))}/report.html">run</a></td></tr>`;
    })
    .join('')}</table>`;
  const body = `<h1>reno sweep</h1><p>${finished.length} of ${planned.length} cells finished.</p><p><img src="grid.png" alt="sweep grid" style="max-width:100%"></p>${table}<h2>Sweep</h2><pre>${escapeXml(YAML.stringify({ base: spec.base, grid: Object.fromEntries(spec.grid) }))}</pre>`;
  writeFileAtomic(path.join(dir, 'report.html'), page('reno sweep', body));
}
