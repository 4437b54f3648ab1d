// `reno preference eval --model CKPT [--model ABLATION ...] --data DIR`: the seed paper's evaluation (4.1, Tables
// 1-4, Figs. 5 and 7) of preference checkpoints on the test split of a preference dataset.
//   protocol   src/preference/protocol.ts: per test user a fixed history (seen users: their train pairs;
//              unseen users: some of their own test pairs) and the query pairs scored; the same queries for every
//              model, baseline and N_ref;
//   top-1      pairwise accuracy (liked scored above disliked, ties one half) over all, seen and unseen users' query
//              pairs, and the seen-unseen gap, at the main checkpoint's N_ref;
//   top-k      one liked image against three disliked images of the same user (metrics.ts candidateSets, seeded; by
//              default one set per distinct liked query image, reference images excluded), top-1/2/3;
//   N_ref      the sweep (default 0, 1, 2, 4, 8 up to the checkpoint's n_ref, and n_ref itself), nested histories;
//   baselines  each general reward zero-shot (its score of the image for the pair's prompt; N_ref 0), and
//              "untrained": the main checkpoint's architecture and template on its backbone with fresh LoRA
//              adapters (B = 0, so the language model is the backbone's own) and seeded random prototypes
//              N(0, std of embed_tokens), vision tower as loaded: the zero-shot VLM (the paper's "IDEFICS" column);
//              "embedding" (or "embedding:FORMULA", one row per formula asked for): the training-free embedding
//              personal model (rewards/personal-embedding.ts) fitted to each user's first N_ref history pairs, with
//              its own N_ref sweep (N_ref 0 scores every image 0: chance).
// Model scores are M+ - M- (Q = sigmoid of it); a reward's score is its own scale (only the order matters).
// Writes OUT/tables.md, OUT/tables.json, OUT/nref.png (seen solid, unseen dashed, per model) and OUT/nref-all.png.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REWARDS, rewardLabel, rewardSpec } from '../../rewards/index.js';
import { loadPreferenceModel, readPreferenceConfig, recordedBackboneDir } from '../preference/checkpoint.js';
import { readPreferenceDataset } from '../preference/data.js';
import {
  candidateSets,
  groupedPairwise,
  groupedTopK,
  nRefSweep,
  table1,
  table2,
  table3,
  table4,
  tableJson,
  tableMarkdown,
  type Grouped,
  type NRefSweep,
  type PaperTable,
} from '../preference/metrics.js';
import { PreferenceModel } from '../preference/model.js';
import { DEFAULT_FORMULA, DEFAULT_TOWER, checkFormula, type Formula } from '../../rewards/personal-embedding.js';
import { evalProtocol, queryTargets, swapPartners, targetKey, worldGroups, type EvalUser, type Target } from '../preference/protocol.js';
import { useBackend } from '../runtime/backend.js';
import { UsageError } from '../errors.js';
import { PALETTE, lineChartSvg, svgToPng, type LineSeries } from '../report/charts.js';
import { progress } from '../util/progress.js';
import { makeDirs, writeFileAtomic } from '../util/files.js';
import { PERSONAL, rewardContext } from '../run/session.js';
import { modelPlaces } from './common.js';
import { pairsOf, setsOf, scoreModel, scoreSwapped, scoreEmbedding, scoreReward } from './preference-scoring.js';

export const UNTRAINED = 'untrained';
export const EMBEDDING = 'embedding';
/** "embedding" -> the default formula; "embedding:nn" -> nn; anything else -> null. */
export function embeddingBaseline(b: string): Formula | null {
  if (b === EMBEDDING) return DEFAULT_FORMULA;
  if (b.startsWith(`${EMBEDDING}:`)) return checkFormula(b.slice(EMBEDDING.length + 1), `--baselines ${b}`);
  return null;
}
/** The general rewards (every registered reward but the personal one). */
export const GENERAL_REWARDS = () => REWARDS.map((r) => r.name).filter((n) => n !== PERSONAL);

export interface PreferenceEvalOptions {
  /** Checkpoint folders: the first is the main model, the others ablations; "label=DIR" or {label, dir} names a column. */
  model: (string | { label: string; dir: string })[];
  data: string;
  /** Print tables.json instead of the markdown tables. */
  json?: boolean;
  /** The embedding baseline's image tower (default pickscore). */
  embeddingTower?: string;
  /** Reward names, "untrained" and/or "embedding[:FORMULA]" (default: every general reward whose models are found, and "untrained"). */
  baselines?: string[];
  /** N_ref values of the sweep (default 0, 1, 2, 4, 8, ... up to the main checkpoint's n_ref, and n_ref). */
  nRef?: number[];
  /** Output folder (default <main checkpoint>/eval). */
  out?: string;
  /** Backbone folder for every checkpoint (default: the folder each checkpoint recorded). */
  backbone?: string;
  preset?: string;
  modelsDir?: string;
  seed?: number;
  /**
   * Controls run on the main checkpoint (default ['swap']): 'swap' adds the row "<model>, swapped history", each
   * user's queries scored after another user's history (of another taste group in a synthetic world;
   * protocol.ts swapPartners) at the main N_ref: a model that reads the history falls there. [] for none.
   */
  controls?: string[];
  /** Candidate sets per user (default: one per distinct liked query image). */
  setsPerUser?: number;
  backend?: string;
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
  log?: (line: string) => void;
  /** Where the tables (or JSON) are printed (default stdout). */
  print?: (text: string) => void;
}

/** One evaluated model or baseline. */
export interface ModelEval {
  label: string;
  kind: 'checkpoint' | 'untrained' | 'reward' | 'embedding' | 'swapped';
  /** Checkpoint folder or reward name. */
  source: string;
  /** The N_ref of the main numbers (0 for rewards). */
  nRef: number;
  top1: Grouped<number>;
  topK: Grouped<number[]>;
  /** Top-1 per N_ref of the sweep (checkpoints, untrained and embedding only). */
  sweep?: { nRef: number; accuracy: Grouped<number> }[];
}

export interface PreferenceEvalResult {
  out: string;
  protocol: {
    users: { seen: number; unseen: number };
    queries: { seen: number; unseen: number };
    skipped: string[];
    maxNRef: number;
    candidateSets: number;
    seed: number;
  };
  models: ModelEval[];
  sweep: NRefSweep;
  tables: PaperTable[];
  files: string[];
  seconds: number;
}

/** A checkpoint's column name from its settings (the paper's ablation names), else its folder name. */
export function settingLabel(cfg: { use_prompt?: unknown; prototypes?: unknown; training?: { aux?: unknown } }, dir: string): string {
  const prompt = cfg.use_prompt !== false;
  const aux = cfg.training?.aux !== false;
  const protos = Number(cfg.prototypes ?? 0);
  if (!prompt && !aux && protos === 0) return 'ViPer*';
  if (prompt && !aux && protos === 0) return 'w/ Pmpt';
  if (prompt && aux && protos === 0) return 'w/o P_v';
  return path.basename(path.resolve(dir));
}

/** "label=DIR" or DIR. */
export function parseModelArg(s: string): { label?: string; dir: string } {
  const m = /^([^=/\\]+)=(.+)$/.exec(s);
  if (m && !fs.existsSync(s)) return { label: m[1], dir: m[2] };
  return { dir: s };
}

/** Default sweep: 0, 1, 2, 4, 8, ... below n_ref, then n_ref. */
export function defaultSweep(nRef: number): number[] {
  const out = [0];
  for (let k = 1; k < nRef; k *= 2) out.push(k);
  if (nRef > 0) out.push(nRef);
  return [...new Set(out)];
}

/** The paper's column names of the general rewards. */
/** The reward baselines' names in plots and tables, from the reward registry (RewardSpec.label). */
export const REWARD_LABELS: Record<string, string> = Object.fromEntries(REWARDS.filter((s) => s.label).map((s) => [s.name, s.label!]));
const UNTRAINED_LABEL = 'Untrained VLM';

/** Accuracy (%) against N_ref (Figs. 5 and 7): per model seen solid and unseen dashed (or all), a grey chance line. */
export function nRefPlot(sweep: NRefSweep, groups: 'seen-unseen' | 'all'): Promise<string> {
  const pct = (v: number[]) => v.map((x) => 100 * x);
  const series: LineSeries[] = sweep.series.flatMap((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    if (groups === 'all') return [{ name: s.model, values: pct(s.all), color }];
    return [
      { name: `${s.model}, seen`, values: pct(s.seen), color },
      { name: `${s.model}, unseen`, values: pct(s.unseen), color, dashed: true },
    ];
  });
  series.push({ name: 'chance (50 %)', values: sweep.nRef.map(() => 50), color: '#999999', dashed: true });
  const values = series.flatMap((s) => s.values).filter(Number.isFinite);
  const lo = Math.max(0, Math.floor((Math.min(...values) - 3) / 5) * 5);
  const hi = Math.min(100, Math.ceil((Math.max(...values) + 3) / 5) * 5);
  return lineChartSvg({
    title: groups === 'all' ? 'Top-1 accuracy on all test users vs N_ref' : 'Top-1 accuracy on seen (solid) and unseen (dashed) users vs N_ref',
    x: sweep.nRef,
    xTicks: sweep.nRef,
    points: true,
    series,
    xLabel: 'N_ref (reference pairs in the history)',
    yLabel: 'Top-1 pairwise accuracy (%)',
    yRange: [lo, hi],
    width: groups === 'all' ? 680 : 760,
    height: 420,
  });
}

const fmt = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(2) : '–');

/** The ablation table (Table 4) with seen and unseen rows added. */
export function ablationTable(models: readonly { label: string; top1: Grouped<number> }[]): PaperTable {
  const t = table4(models.map((m) => ({ setting: m.label, top1: m.top1.all })));
  const pct = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e6) / 1e4 : null);
  t.rows.push(['Seen top-1 (%)', ...models.map((m) => pct(m.top1.seen))], ['Unseen top-1 (%)', ...models.map((m) => pct(m.top1.unseen))]);
  return t;
}

export async function preferenceEval(o: PreferenceEvalOptions): Promise<PreferenceEvalResult> {
  const t0 = Date.now();
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const print = o.print ?? ((s: string) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'));
  if (!o.model.length) throw new UsageError('give at least one --model checkpoint');
  const ckpts = o.model.map((m) => (typeof m === 'string' ? parseModelArg(m) : m)).map((m) => ({ ...m, dir: path.resolve(m.dir) }));
  const ds = readPreferenceDataset(o.data);
  const main = readPreferenceConfig(ckpts[0].dir);
  const mainN = main.config.nRef;
  const ns = [...new Set(o.nRef ?? defaultSweep(mainN))].sort((a, b) => a - b);
  for (const n of ns) if (!(Number.isInteger(n) && n >= 0)) throw new UsageError(`--n-ref values must be integers >= 0, found ${n}`);
  const evalNs = [...new Set([...ns, mainN])].sort((a, b) => a - b);
  const controls = o.controls ?? ['swap'];
  for (const c of controls) if (c !== 'swap') throw new UsageError(`unknown --controls value "${c}" (known: swap)`);
  const seed = o.seed ?? 0;
  const places = modelPlaces({ modelsDir: o.modelsDir, preset: o.preset });
  // baselines: an explicit list must load; the default list skips rewards whose models are not found
  const explicit = o.baselines !== undefined;
  const wanted = o.baselines ?? [...GENERAL_REWARDS(), UNTRAINED];
  const rewards: string[] = [];
  const formulas: Formula[] = [];
  for (const b of wanted) {
    if (b === UNTRAINED) continue;
    const f = embeddingBaseline(b);
    if (f) {
      if (!formulas.includes(f)) formulas.push(f);
      continue;
    }
    if (b === PERSONAL) throw new UsageError('the personal reward is the model under evaluation: give its checkpoint with --model');
    const spec = rewardSpec(b);
    try {
      for (const m of spec.models) rewardContext(places).locate(m);
      rewards.push(b);
    } catch (e) {
      if (explicit) throw e;
      log(`reno: baseline ${b} skipped: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const proto = evalProtocol(ds, { maxNRef: Math.max(...evalNs), seed });
  if (!proto.users.length) throw new UsageError(`${ds.dir}: no test user has a query pair to score`);
  const exclude = new Map(proto.users.map((u) => [u.user, new Set(u.history.slice(0, mainN).flatMap((p) => [p.liked, p.disliked]))]));
  const { sets } = candidateSets(
    proto.users.flatMap((u) => u.queries),
    { seed, disliked: 3, perUser: o.setsPerUser ?? Number.MAX_SAFE_INTEGER, exclude },
  );
  const allTargets = [...new Map(proto.users.flatMap((u) => queryTargets(u)).map((t) => [targetKey(t), t])).values()];
  const out = path.resolve(o.out ?? path.join(ckpts[0].dir, 'eval'));
  await useBackend(o.backend, { quiet: o.quiet || o.json });
  const vlms = [...ckpts.slice(1), ckpts[0]]; // ablations first, the main model last (the paper's column order)
  const untrained = wanted.includes(UNTRAINED);
  const embeddingTower = o.embeddingTower ?? DEFAULT_TOWER;
  const partners = controls.includes('swap') ? swapPartners(proto.users, worldGroups(ds.dir)) : new Map<string, EvalUser>();
  const units =
    (vlms.length + (untrained ? 1 : 0) + (formulas.length ? 1 : 0)) * proto.users.length * evalNs.length +
    rewards.length * allTargets.length +
    partners.size;
  let done = 0;
  const bar = progress({ total: units, label: 'eval', quiet: o.quiet || o.json, stream: o.stream });
  const models: ModelEval[] = [];
  const labels = new Set<string>();
  const unique = (l: string, dir: string) => (labels.has(l) ? `${l} (${path.basename(dir)})` : l);
  const evalScores = (
    label: string,
    kind: ModelEval['kind'],
    source: string,
    nRef: number,
    score: (user: string, t: Target) => number,
    sweep?: ModelEval['sweep'],
    only?: Set<string>,
  ) => {
    // `only`: the users scored (the swap control leaves out users with no partner)
    const p = only ? { ...proto, users: proto.users.filter((u) => only.has(u.user)) } : proto;
    const m: ModelEval = {
      label,
      kind,
      source,
      nRef,
      top1: groupedPairwise(pairsOf(p, score)),
      topK: groupedTopK(setsOf(p, only ? sets.filter((x) => only.has(x.user)) : sets, score)),
      sweep,
    };
    labels.add(label);
    models.push(m);
    if (!o.quiet && !o.json)
      bar.log(
        `${label}: top-1 ${fmt(m.top1.all)} % (seen ${fmt(m.top1.seen)}, unseen ${fmt(m.top1.unseen)}), top-1/2/3 of 4 ${m.topK.all.map(fmt).join(' / ')} %`,
      );
  };
  try {
    for (const name of rewards) {
      const s = await scoreReward(name, places, allTargets, bar, (k) => (done += k));
      evalScores(rewardLabel(name), 'reward', name, 0, (_u, t) => s.get(targetKey(t))!);
    }
    if (formulas.length) {
      const scores = await scoreEmbedding(embeddingTower, formulas, places, proto, evalNs, bar, () => ++done);
      for (const f of formulas) {
        const at = (n: number) => (user: string, t: Target) =>
          scores
            .get(f)!
            .get(n)!
            .get(`${user}\u0000${targetKey(t)}`)!;
        const sweep = ns.map((n) => ({ nRef: n, accuracy: groupedPairwise(pairsOf(proto, at(n))) }));
        evalScores(`Embedding ${f} (${embeddingTower})`, 'embedding', `${embeddingTower}:${f}`, mainN, at(mainN), sweep);
      }
    }
    const runVlm = async (label: string, kind: ModelEval['kind'], source: string, model: PreferenceModel) => {
      const scores = await scoreModel(model, proto, evalNs, bar, () => ++done, label);
      const at = (n: number) => (user: string, t: Target) => scores.get(n)!.get(`${user}\u0000${targetKey(t)}`)!;
      const sweep = ns.map((n) => ({ nRef: n, accuracy: groupedPairwise(pairsOf(proto, at(n))) }));
      evalScores(label, kind, source, mainN, at(mainN), sweep);
    };
    if (untrained) {
      const dir = o.backbone ? path.resolve(o.backbone) : backboneOf(ckpts[0].dir);
      const m = PreferenceModel.create(dir, main.config, { seed });
      try {
        await runVlm(UNTRAINED_LABEL, 'untrained', dir, m);
      } finally {
        m.dispose();
      }
    }
    for (const [i, c] of vlms.entries()) {
      const isMain = i === vlms.length - 1;
      const label = unique(
        c.label ?? (isMain ? 'Ours' : settingLabel(readPreferenceConfig(c.dir).json as Parameters<typeof settingLabel>[0], c.dir)),
        c.dir,
      );
      const m = loadPreferenceModel(c.dir, { backboneDir: o.backbone && path.resolve(o.backbone) });
      try {
        await runVlm(label, 'checkpoint', c.dir, m);
        if (isMain && partners.size) {
          const sw = await scoreSwapped(m, proto, partners, mainN, bar, () => ++done, label);
          const swLabel = unique(`${label}, swapped history`, c.dir);
          evalScores(swLabel, 'swapped', c.dir, mainN, (user, t) => sw.get(`${user}\u0000${targetKey(t)}`)!, undefined, new Set(partners.keys()));
        }
      } finally {
        m.dispose();
      }
    }
  } finally {
    bar.stop();
  }
  const sweep = nRefSweep(models.flatMap((m) => (m.sweep ?? []).map((s) => ({ model: m.label, nRef: s.nRef, accuracy: s.accuracy }))));
  const tables = [
    table1(models.map((m) => ({ model: m.label, nRef: m.nRef, top1: m.top1.all }))),
    table2(
      models.map((m) => ({ model: m.label, seen: m.top1.seen, unseen: m.top1.unseen })),
      mainN,
    ),
    table3(models.map((m) => ({ model: m.label, nRef: m.nRef, topK: m.topK.all }))),
  ];
  const vlmEvals = models.filter((m) => m.kind === 'checkpoint');
  if (vlmEvals.length > 1) tables.push(ablationTable(vlmEvals));
  const nSeen = proto.users.filter((u) => u.group === 'seen');
  const nUnseen = proto.users.filter((u) => u.group === 'unseen');
  const protocol = {
    users: { seen: nSeen.length, unseen: nUnseen.length },
    queries: { seen: nSeen.reduce((s, u) => s + u.queries.length, 0), unseen: nUnseen.reduce((s, u) => s + u.queries.length, 0) },
    skipped: proto.skipped,
    maxNRef: proto.maxNRef,
    candidateSets: sets.length,
    seed,
  };
  makeDirs(out);
  const head = [
    `# Preference evaluation: ${ds.dir}`,
    '',
    `Test users: ${protocol.users.seen} seen (${protocol.queries.seen} query pairs), ${protocol.users.unseen} unseen (${protocol.queries.unseen} query pairs)` +
      `${protocol.skipped.length ? `; skipped (too few test pairs): ${protocol.skipped.join(', ')}` : ''}. ` +
      `Checkpoints${formulas.length ? ' and the embedding model' : ''} at N_ref = ${mainN}; rewards zero-shot (N_ref 0); ${sets.length} candidate sets of 1 liked + 3 disliked. ` +
      `Seen users' histories are their train pairs, unseen users' are their own first test pairs (see src/preference/protocol.ts).` +
      (partners.size
        ? ` "Swapped history": each user's queries scored after the history of another user of the same kind${worldGroups(ds.dir) ? ' and of another taste group' : ''} (${partners.size} users).`
        : ''),
    ...(places.smokeTest ? ['', '_Tiny smoke-test preset: the general rewards and the backbone have random weights._'] : []),
    '',
  ];
  const md = head.join('\n') + '\n' + tables.map(tableMarkdown).join('\n');
  const json = {
    data: ds.dir,
    checkpoints: ckpts.map((c) => c.dir),
    smoke_test: places.smokeTest,
    protocol,
    models,
    sweep,
    tables: tables.map(tableJson),
  };
  const files = ['tables.md', 'tables.json', 'nref.png', 'nref-all.png'].map((f) => path.join(out, f));
  writeFileAtomic(files[0], md);
  writeFileAtomic(files[1], JSON.stringify(json, null, 2) + '\n');
  writeFileAtomic(files[2], await svgToPng(await nRefPlot(sweep, 'seen-unseen')));
  writeFileAtomic(files[3], await svgToPng(await nRefPlot(sweep, 'all')));
  print(o.json ? JSON.stringify(json, null, 2) : md);
  if (!o.quiet && !o.json) log(`reno: wrote ${files.join(', ')}`);
  return { out, protocol, models, sweep, tables, files, seconds: (Date.now() - t0) / 1000 };
}

/** The backbone folder a checkpoint recorded (relative paths are relative to the checkpoint). */
export function backboneOf(dir: string): string {
  const rec = recordedBackboneDir(dir);
  if (!rec) throw new UsageError(`${dir}/config.json records no backbone folder: give --backbone`);
  return rec;
}
