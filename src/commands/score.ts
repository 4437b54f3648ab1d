// `reno score --prompt "..." IMAGE...`: every reward's score for every image, through the same code path the
// optimiser uses (RewardInput -> PreparedReward.score), as a table or JSON. A PNG reno wrote carries its settings
// (the `reno` chunk, src/image/a1111.ts): they are reported with the scores, and its prompt is used without --prompt.
import * as tf from '../runtime/tf.js';
import * as fs from 'node:fs';
import { REWARDS, RewardInput, rewardSpec } from '../../rewards/index.js';
import { checkRewardModels, loadRewards } from '../../rewards/load.js';
import type { PreparedReward } from '../../rewards/types.js';
import { useBackend } from '../runtime/backend.js';
import { DataError, UsageError } from '../errors.js';
import { readImageRecord, shortHash, type ImageRecord } from '../image/a1111.js';
import { readImage } from '../image/png.js';
import { PERSONAL, rewardContext } from '../run/session.js';
import { modelPlaces, personalOptions } from './common.js';

export interface ScoreOptions {
  /** the prompt every image is scored against (default: each image's own, from its reno record) */
  prompt?: string;
  images: string[];
  /** reward names (default: every general reward, plus personal with --user) */
  rewards?: string[];
  user?: string;
  preferenceModel?: string;
  guidance?: 'like' | 'dislike';
  nRef?: number;
  /** which personal model: auto (default), vlm or embedding; the embedding model's tower */
  personal?: 'auto' | 'vlm' | 'embedding';
  personalTower?: string;
  json?: boolean;
  modelDir?: string;
  modelsDir?: string;
  preset?: string;
  backend?: string;
  quiet?: boolean;
  out?: (line: string) => void;
}

export interface ScoreRow {
  image: string;
  /** the prompt it was scored against */
  prompt: string;
  scores: Record<string, number>;
  /** the settings and scores reno stored in the image when it made it (null: not a PNG reno wrote) */
  stored: ImageRecord | null;
}

/** The reno record of an image, or null when it has none (another tool's image, a JPEG). */
function storedRecord(file: string): ImageRecord | null {
  try {
    return readImageRecord(file);
  } catch (e) {
    if (e instanceof DataError && /not a PNG|no "reno" text chunk/.test(e.message)) return null;
    throw e;
  }
}

/** One line saying what reno stored in an image. */
export function storedLine(image: string, r: ImageRecord): string {
  const n = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${v.toFixed(4)}`)
      .join(', ');
  return (
    `# ${image}: made by reno ${r.reno_version}: prompt ${JSON.stringify(r.prompt)}, seed ${r.seed}, ${r.width}x${r.height}, ` +
    `${r.model.name} (hash ${shortHash(r.model.sha256)}${r.smoke_test ? ', smoke test' : ''}), ${r.image} image at step ${r.step}` +
    `${r.best_step !== null ? ` (best step ${r.best_step})` : ''} of ${r.config.optimize ? r.config.steps : 1}, ${r.config.optimizer} lr ${r.config.lr}; ` +
    `weights: ${n(r.weights) || 'none'}; stored scores: ${n(r.scores) || 'none'}`
  );
}

export function scoreTable(rows: ScoreRow[], names: string[]): string[] {
  const head = ['image', ...names];
  const cells = rows.map((r) => [r.image, ...names.map((n) => r.scores[n].toFixed(4))]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
  return [line(head), ...cells.map(line)];
}

export async function scoreCommand(o: ScoreOptions): Promise<ScoreRow[]> {
  const out = o.out ?? ((l: string) => process.stdout.write(l + '\n'));
  if (o.guidance !== undefined && !o.user)
    throw new UsageError(`--guidance ${o.guidance} needs --user history.json (it steers the personal reward, which runs only with a user's history)`);
  if (!o.images.length) throw new UsageError('give at least one image to score');
  for (const f of o.images) if (!fs.existsSync(f)) throw new DataError(`image not found: ${f}`);
  const stored = o.images.map(storedRecord);
  const prompts = o.images.map((f, i) => {
    const p = o.prompt ?? stored[i]?.prompt;
    if (p === undefined) throw new UsageError(`${f}: no --prompt given, and the image holds no reno record to take its prompt from`);
    return p;
  });
  const names = o.rewards?.length ? o.rewards : [...REWARDS.map((r) => r.name).filter((n) => n !== PERSONAL), ...(o.user ? [PERSONAL] : [])];
  for (const n of names) rewardSpec(n);
  if (names.includes(PERSONAL) && !o.user) throw new UsageError('the personal reward needs --user history.json');
  const places = modelPlaces(o);
  const log = (l: string) => process.stderr.write(l + '\n');
  const personal = personalOptions(o.user, o.guidance ?? 'like', o.nRef ?? 8, o.preferenceModel, {
    mode: o.personal,
    tower: o.personalTower,
    log: o.quiet || o.json ? () => {} : log,
  });
  const ctx = rewardContext(places, personal);
  checkRewardModels(names, ctx);
  await useBackend(o.backend, { quiet: o.quiet || o.json });
  const rewards = await loadRewards(names, ctx);
  const rows: ScoreRow[] = [];
  const preparedFor = new Map<string, PreparedReward[]>();
  try {
    for (const [i, file] of o.images.entries()) {
      let prepared = preparedFor.get(prompts[i]);
      if (!prepared) preparedFor.set(prompts[i], (prepared = names.map((n) => rewards.get(n)!.prepare(prompts[i]))));
      const image = await readImage(file);
      const input = new RewardInput(image);
      const ps = prepared;
      const t = tf.tidy(() => tf.stack(ps.map((p) => p.score(input))));
      const v = await t.data();
      tf.dispose([t, image]);
      input.dispose();
      rows.push({ image: file, prompt: prompts[i], scores: Object.fromEntries(names.map((n, j) => [n, v[j]])), stored: stored[i] });
    }
  } finally {
    for (const ps of preparedFor.values()) for (const p of ps) p.dispose();
    for (const r of rewards.values()) r.dispose();
  }
  if (o.json) out(JSON.stringify({ prompt: o.prompt ?? null, smoke_test: places.smokeTest, rows }, null, 2));
  else {
    if (places.smokeTest) out('# tiny smoke-test preset (random weights): scores are not meaningful');
    for (const r of rows) if (r.stored) out(storedLine(r.image, r.stored));
    for (const l of scoreTable(rows, names)) out(l);
  }
  return rows;
}
