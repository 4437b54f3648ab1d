// Scoring saved images with every loaded reward (compare's cross table, sweep summaries): the optimiser's own code
// path (RewardInput -> PreparedReward.score) on the PNG a user sees.
import * as tf from '../runtime/tf.js';
import { RewardInput } from '../../rewards/input.js';
import type { Reward } from '../../rewards/types.js';
import { readImage } from '../image/png.js';

export async function scoreFiles(rewards: Map<string, Reward>, prompt: string, files: string[]): Promise<Record<string, number>[]> {
  const names = [...rewards.keys()];
  const prepared = names.map((n) => rewards.get(n)!.prepare(prompt));
  const out: Record<string, number>[] = [];
  try {
    for (const f of files) {
      const image = await readImage(f);
      const input = new RewardInput(image);
      const t = tf.tidy(() => tf.stack(prepared.map((p) => p.score(input))));
      const v = await t.data();
      tf.dispose([t, image]);
      input.dispose();
      out.push(Object.fromEntries(names.map((n, i) => [n, v[i]])));
    }
  } finally {
    for (const p of prepared) p.dispose();
  }
  return out;
}

/** A markdown table: rows x columns of numbers. */
export function markdownTable(corner: string, rows: string[], cols: string[], value: (r: number, c: number) => string): string {
  const head = `| ${corner} | ${cols.join(' | ')} |`;
  const sep = `|${['---', ...cols.map(() => '---:')].join('|')}|`;
  return [head, sep, ...rows.map((r, i) => `| ${r} | ${cols.map((_, j) => value(i, j)).join(' | ')} |`)].join('\n') + '\n';
}
