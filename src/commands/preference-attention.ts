// `reno preference attention --model CKPT --data DIR`: the seed paper's Fig. 3 (a): heat maps of the attention
// between the tokens of one target image and the learnable prototypes, for several users and several reorderings
// of each user's history. The same target image follows every user's history; rows are its S image tokens (in
// order), columns the prototypes P1..PLp; a cell is the softmax attention probability of that token (query) to that
// prototype (key) in the chosen layer and head (or the mean over heads), read through the backbone's
// recordAttention hook (src/models/idefics3/llama.ts). The probabilities are the raw ones over all keys (prototypes,
// history, target), so a row sums to the share of the token's attention that goes to the prototypes; one colour
// scale serves every panel.
// Histories follow src/preference/protocol.ts (seen users: train pairs; unseen users: their first test pairs),
// at the checkpoint's n_ref; ordering 1 is that history, orderings 2.. are seeded shuffles of its pairs and of the
// entries inside each pair (as training shuffles them).
// Writes OUT/attention.png (rows = users, columns = orderings; each panel with axes and a colour bar) and
// OUT/attention.json (the values, and how much the maps differ between orderings of one user and between users).
import * as fs from 'node:fs';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import sharp from 'sharp';
import { readPreferenceDataset } from '../preference/data.js';
import { shuffle } from '../util/shuffle.js';
import type { RefPixels } from '../preference/model.js';
import { historyRefs, targetAttention, type EvalUser } from '../preference/protocol.js';
import { chooseUsers, withCheckpoint } from './preference-common.js';
import { UsageError } from '../errors.js';
import { heatmapPng, imageGrid } from '../report/charts.js';
import { makeDirs, writeFileAtomic } from '../util/files.js';
import { progress } from '../util/progress.js';

export interface PreferenceAttentionOptions {
  model: string;
  data: string;
  /** Users to show: names, or how many to pick (default 4; see protocol.ts pickUsers). */
  users?: string[] | number;
  /** History orderings per user (default 4). */
  orders?: number;
  /** Language-model layer (default the last). */
  layer?: number;
  /** Query head, or 'mean' (default). */
  head?: number | 'mean';
  /** Target image (default: the liked image of the first query pair of the first user shown) and its prompt. */
  target?: string;
  prompt?: string;
  backbone?: string;
  out?: string;
  seed?: number;
  backend?: string;
  quiet?: boolean;
  log?: (line: string) => void;
}

export interface AttentionPanel {
  user: string;
  group: string;
  order: number;
  /** probs[token][prototype] */
  probs: number[][];
  score: number;
}

export interface PreferenceAttentionResult {
  png: string;
  json: string;
  panels: AttentionPanel[];
  /** Mean absolute difference between two panels: of one user (other ordering) vs of two users. */
  spread: { withinUser: number; betweenUsers: number; sameGroup?: number; otherGroup?: number };
}

const meanAbsDiff = (a: number[][], b: number[][]) => {
  let s = 0;
  let n = 0;
  a.forEach((row, i) => row.forEach((v, j) => ((s += Math.abs(v - b[i][j])), n++)));
  return n ? s / n : 0;
};
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** Reference order k of a user: 0 as given, k > 0 a seeded shuffle of pairs and of the entries in each pair. */
export function reorder(refs: RefPixels[], k: number, seed: number | string, user: string): RefPixels[] {
  if (k === 0) return refs.map((r) => ({ ...r, likedFirst: true }));
  const rng = seedrandom(`reno-attention:${seed}:${user}:${k}`);
  return shuffle(refs, rng).map((r) => ({ ...r, likedFirst: rng() < 0.5 }));
}

export async function preferenceAttention(o: PreferenceAttentionOptions): Promise<PreferenceAttentionResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const ds = readPreferenceDataset(o.data);
  const orders = o.orders ?? 4;
  if (!(Number.isInteger(orders) && orders >= 1)) throw new UsageError(`--orders must be a positive integer, found ${orders}`);
  const seed = o.seed ?? 0;
  return withCheckpoint(o, async ({ ckpt, model, images }) => {
    const lp = model.config.prototypes;
    if (lp === 0) throw new UsageError(`${ckpt} has no prototypes (--prototypes 0): there is no prototype attention to show`);
    const nLayers = model.backbone.config.text.numLayers;
    const layer = o.layer ?? nLayers - 1;
    const head = o.head ?? 'mean';
    if (!(Number.isInteger(layer) && layer >= 0 && layer < nLayers)) throw new UsageError(`--layer must be in 0..${nLayers - 1}, found ${layer}`);
    const heads = model.backbone.config.text.numHeads;
    if (head !== 'mean' && !(Number.isInteger(head) && head >= 0 && head < heads))
      throw new UsageError(`--head must be in 0..${heads - 1} or "mean", found ${head}`);
    const { chosen, groups } = chooseUsers(ds, model, seed, o.users, 4);
    if (!chosen.length) throw new UsageError(`${ds.dir}: no test user to show`);
    const target = o.target ? path.resolve(o.target) : chosen[0].queries[0].liked;
    const prompt = o.prompt ?? (o.target ? '' : chosen[0].queries[0].prompt);
    if (!fs.existsSync(target)) throw new UsageError(`target image not found: ${target}`);
    const pixels = await images.get(target);
    const bar = progress({ total: chosen.length * orders, label: 'attention', quiet: o.quiet });
    const panels: AttentionPanel[] = [];
    const groupName = (u: EvalUser) => `${groups?.has(u.user) ? `group ${groups.get(u.user)}, ` : ''}${u.group}`;
    for (const u of chosen) {
      const refs = await historyRefs(images, u.history);
      for (let k = 0; k < orders; k++) {
        const a = await targetAttention(model, reorder(refs, k, seed, u.user), prompt, pixels, { layer, head });
        panels.push({ user: u.user, group: groupName(u), order: k + 1, probs: a.probs, score: a.score });
        bar.update(panels.length, `${u.user} ordering ${k + 1}`);
      }
    }
    bar.stop();
    const vmax = Math.max(...panels.flatMap((p) => p.probs.flat()));
    const cells = [];
    for (const u of chosen) {
      const row = [];
      for (const p of panels.filter((x) => x.user === u.user)) {
        const png = await heatmapPng({
          title: `${u.user}, ordering ${p.order}: Q(+) = ${(1 / (1 + Math.exp(-p.score))).toFixed(2)}`,
          values: p.probs,
          rowLabels: p.probs.map((_, i) => `t${i + 1}`),
          colLabels: Array.from({ length: lp }, (_, j) => `P${j + 1}`),
          xLabel: 'prototype',
          yLabel: 'target image token',
          vmin: 0,
          vmax,
          plotWidth: 22 * lp,
          plotHeight: 15 * p.probs.length,
        });
        row.push({ png });
      }
      cells.push(row);
    }
    // panel size: the heat map's own size, so the grid does not scale its text
    const meta = await sharp(cells[0][0].png).metadata();
    const cellSize = Math.max(meta.width ?? 300, meta.height ?? 300);
    const headName = head === 'mean' ? 'mean over heads' : `head ${head}`;
    const grid = await imageGrid(cells, {
      title: `Attention of one target image's tokens (rows) to the ${lp} prototypes (columns), layer ${layer}, ${headName}`,
      rowLabels: chosen.map((u) => `${u.user} (${groupName(u)})`),
      colLabels: Array.from({ length: orders }, (_, k) => (k === 0 ? 'history as stored' : `reordering ${k}`)),
      cellSize,
    });
    const out = path.resolve(o.out ?? path.join(ckpt, 'eval'));
    makeDirs(out);
    const png = path.join(out, 'attention.png');
    const json = path.join(out, 'attention.json');
    const pairsOf = (same: boolean) => {
      const d: number[] = [];
      for (let i = 0; i < panels.length; i++)
        for (let j = i + 1; j < panels.length; j++)
          if ((panels[i].user === panels[j].user) === same) d.push(meanAbsDiff(panels[i].probs, panels[j].probs));
      return mean(d);
    };
    const byUserMean = chosen.map((u) => {
      const ps = panels.filter((p) => p.user === u.user);
      return { u, m: ps[0].probs.map((row, i) => row.map((_, j) => mean(ps.map((p) => p.probs[i][j])))) };
    });
    const groupPairs = (same: boolean) => {
      if (!groups) return undefined;
      const d: number[] = [];
      for (let i = 0; i < byUserMean.length; i++)
        for (let j = i + 1; j < byUserMean.length; j++)
          if ((groups.get(byUserMean[i].u.user) === groups.get(byUserMean[j].u.user)) === same) d.push(meanAbsDiff(byUserMean[i].m, byUserMean[j].m));
      return d.length ? mean(d) : undefined;
    };
    const spread = { withinUser: pairsOf(true), betweenUsers: pairsOf(false), sameGroup: groupPairs(true), otherGroup: groupPairs(false) };
    writeFileAtomic(png, grid);
    writeFileAtomic(
      json,
      JSON.stringify({ checkpoint: ckpt, data: ds.dir, layer, head, target, prompt, prototypes: lp, vmax, spread, panels }, null, 1) + '\n',
    );
    if (!o.quiet) {
      const f = (x: number | undefined) => (x === undefined ? '–' : x.toExponential(2));
      log(
        `reno: mean |difference| between panels: same user ${f(spread.withinUser)}, different users ${f(spread.betweenUsers)}; user means: same group ${f(spread.sameGroup)}, other group ${f(spread.otherGroup)}`,
      );
      log(`reno: wrote ${png} and ${json}`);
    }
    return { png, json, panels, spread };
  });
}
