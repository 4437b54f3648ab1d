// `reno score --prompt "..." IMAGE...`: every reward's score for every image, through the same code path the
// optimiser uses (RewardInput -> PreparedReward.score), as a table or JSON.
import * as tf from '../runtime/tf.js';
import * as fs from 'node:fs';
import { REWARDS, RewardInput, rewardSpec } from '../../rewards/index.js';
import { checkRewardModels, loadRewards } from '../../rewards/load.js';
import { useBackend } from '../runtime/backend.js';
import { DataError, UsageError } from '../errors.js';
import { readImage } from '../image/png.js';
import { PERSONAL, rewardContext } from '../run/session.js';
import { modelPlaces, personalOptions } from './common.js';

export interface ScoreOptions {
  prompt: string;
  images: string[];
  /** reward names (default: every general reward, plus personal with --user) */
  rewards?: string[];
  user?: string;
  preferenceModel?: string;
  guidance?: 'like' | 'dislike';
  nRef?: number;
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
  scores: Record<string, number>;
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
  if (o.guidance !== undefined && !o.user) throw new UsageError(`--guidance ${o.guidance} needs --user history.json (it steers the personal reward, which runs only with a user's history)`);
  if (!o.images.length) throw new UsageError('give at least one image to score');
  for (const f of o.images) if (!fs.existsSync(f)) throw new DataError(`image not found: ${f}`);
  const names = o.rewards?.length ? o.rewards : [...REWARDS.map((r) => r.name).filter((n) => n !== PERSONAL), ...(o.user ? [PERSONAL] : [])];
  for (const n of names) rewardSpec(n);
  if (names.includes(PERSONAL) && !o.user) throw new UsageError('the personal reward needs --user history.json');
  const places = modelPlaces(o);
  const personal = personalOptions(o.user, o.guidance ?? 'like', o.nRef ?? 8, o.preferenceModel);
  const ctx = rewardContext(places, personal);
  checkRewardModels(names, ctx);
  await useBackend(o.backend, { quiet: o.quiet || o.json });
  const rewards = await loadRewards(names, ctx);
  const rows: ScoreRow[] = [];
  try {
    const prepared = names.map((n) => rewards.get(n)!.prepare(o.prompt));
    for (const file of o.images) {
      const image = await readImage(file);
      const input = new RewardInput(image);
      const t = tf.tidy(() => tf.stack(prepared.map((p) => p.score(input))));
      const v = await t.data();
      tf.dispose([t, image]);
      input.dispose();
      rows.push({ image: file, scores: Object.fromEntries(names.map((n, i) => [n, v[i]])) });
    }
    for (const p of prepared) p.dispose();
  } finally {
    for (const r of rewards.values()) r.dispose();
  }
  if (o.json) out(JSON.stringify({ prompt: o.prompt, smoke_test: places.smokeTest, rows }, null, 2));
  else {
    if (places.smokeTest) out('# tiny smoke-test preset (random weights): scores are not meaningful');
    for (const l of scoreTable(rows, names)) out(l);
  }
  return rows;
}
