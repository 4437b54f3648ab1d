// `reno preference tsne --model CKPT --data DIR`: the seed paper's Fig. 9: a t-SNE map of the features of the
// target images each test user liked, coloured by user.
//   feature: "the transformer outputs before the final linear layer": the final-norm hidden state [D] at the target
//            entry's last position (where the "+" / "-" logits are read), with the user's own history before it
//            (src/preference/protocol.ts: seen users' train pairs, unseen users' first test pairs; the
//            checkpoint's n_ref); one point per liked image of the user's query pairs;
//   map:     exact t-SNE (src/preference/tsne.ts, seeded), perplexity 30 clamped to (n - 1) / 3.
// Also reported: the share of points whose nearest neighbour (in the map and in the feature space) belongs to the
// same user, and to the same taste group when the dataset is a synthetic taste world; and, as a control, the
// same-user share of the same images' features with no history before them (a user's history shifts all of that
// user's features alike, which alone makes clusters; the control tells that apart from the images themselves).
// Writes OUT/tsne.png and OUT/tsne.json (features' 2-d coordinates per point, users, agreement numbers).
import * as path from 'node:path';
import { readPreferenceDataset } from '../preference/data.js';
import { featuresAfterHistory, historyRefs, type EvalUser } from '../preference/protocol.js';
import { chooseUsers, withCheckpoint } from './preference-common.js';
import { nearestNeighbourAgreement, tsne } from '../preference/tsne.js';
import { UsageError } from '../errors.js';
import { PALETTE, scatterPng } from '../report/charts.js';
import { makeDirs, writeFileAtomic } from '../util/files.js';
import { progress } from '../util/progress.js';

export interface PreferenceTsneOptions {
  model: string;
  data: string;
  /** Users: names, or how many to pick (default 8, at most 10 colours; see protocol.ts pickUsers). */
  users?: string[] | number;
  perplexity?: number;
  iterations?: number;
  backbone?: string;
  out?: string;
  seed?: number;
  backend?: string;
  quiet?: boolean;
  log?: (line: string) => void;
}

export interface PreferenceTsneResult {
  png: string;
  json: string;
  points: { user: string; image: string; x: number; y: number }[];
  /**
   * Share of points whose nearest neighbour is of the same user: in the t-SNE map, in the feature space, and in the
   * feature space of the same images with no history (a control: what the images alone cluster like).
   */
  sameUser: { map: number; features: number; featuresWithoutHistory: number };
  /** What sameUser would be for neighbours drawn at random. */
  sameUserChance: number;
  /** The same for taste groups (synthetic worlds only). */
  sameGroup?: { map: number; features: number };
}

export async function preferenceTsne(o: PreferenceTsneOptions): Promise<PreferenceTsneResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const ds = readPreferenceDataset(o.data);
  const seed = o.seed ?? 0;
  const n = typeof o.users === 'number' ? o.users : 8;
  if (!(Number.isInteger(n) && n >= 1 && n <= PALETTE.length))
    throw new UsageError(`--users must be 1..${PALETTE.length} (one colour each), found ${n}`);
  return withCheckpoint(o, async ({ ckpt, model, images }) => {
    const { chosen, groups } = chooseUsers(ds, model, seed, o.users, n);
    if (chosen.length > PALETTE.length) throw new UsageError(`at most ${PALETTE.length} users (one colour each)`);
    const bar = progress({ total: chosen.length, label: 'tsne', quiet: o.quiet });
    const feats: number[][] = [];
    const bare: number[][] = [];
    const meta: { user: string; image: string }[] = [];
    for (const [i, u] of chosen.entries()) {
      const liked = [...new Map(u.queries.map((q) => [q.liked, { prompt: q.prompt, image: q.liked }])).values()];
      const f = await featuresAfterHistory(model, await historyRefs(images, u.history), images, liked);
      feats.push(...f);
      bare.push(...(await featuresAfterHistory(model, [], images, liked)));
      meta.push(...liked.map((t) => ({ user: u.user, image: t.image })));
      bar.update(i + 1, `${u.user}: ${liked.length} liked images`);
    }
    bar.stop();
    if (feats.length < 4) throw new UsageError(`only ${feats.length} liked images among the chosen users: too few for a map`);
    const map = tsne(feats, { perplexity: o.perplexity ?? 30, iterations: o.iterations ?? 1000, seed });
    const users = meta.map((m) => m.user);
    const sameUser = {
      map: nearestNeighbourAgreement(map.points, users),
      features: nearestNeighbourAgreement(feats, users),
      featuresWithoutHistory: nearestNeighbourAgreement(bare, users),
    };
    const g = groups ? meta.map((m) => groups.get(m.user) ?? -1) : null;
    const sameGroup = g ? { map: nearestNeighbourAgreement(map.points, g), features: nearestNeighbourAgreement(feats, g) } : undefined;
    // a random neighbour is of the same user with probability sum n_u (n_u - 1) / (N (N - 1))
    const counts = chosen.map((u) => users.filter((x) => x === u.user).length);
    const chance = counts.reduce((a, c) => a + c * (c - 1), 0) / (users.length * (users.length - 1));
    const label = (u: EvalUser) => `${u.user} (${groups?.has(u.user) ? `g${groups.get(u.user)}, ` : ''}${u.group})`;
    const names = new Map(chosen.map((u) => [u.user, label(u)]));
    const pct = (x: number) => `${Math.round(100 * x)} %`;
    const png = await scatterPng({
      title: `t-SNE of liked test images' features, by user (nearest neighbour same user: ${pct(sameUser.map)})`,
      points: map.points.map((p, i) => ({ x: p[0], y: p[1], group: names.get(meta[i].user)! })),
      groups: chosen.map((u, i) => ({ name: label(u), color: PALETTE[i % PALETTE.length] })),
      xLabel: 't-SNE 1',
      yLabel: 't-SNE 2',
      width: 760,
      height: 520,
    });
    const out = path.resolve(o.out ?? path.join(ckpt, 'eval'));
    makeDirs(out);
    const files = { png: path.join(out, 'tsne.png'), json: path.join(out, 'tsne.json') };
    const points = map.points.map((p, i) => ({ ...meta[i], x: p[0], y: p[1] }));
    writeFileAtomic(files.png, png);
    writeFileAtomic(
      files.json,
      JSON.stringify(
        {
          checkpoint: ckpt,
          data: ds.dir,
          feature: "final-norm hidden state at the target entry's last position",
          n_ref: model.config.nRef,
          perplexity: map.perplexity,
          kl: map.kl,
          sameUser,
          sameUserChance: chance,
          sameGroup,
          users: chosen.map(label),
          points,
        },
        null,
        1,
      ) + '\n',
    );
    if (!o.quiet) {
      log(
        `reno: nearest neighbour of the same user: ${pct(sameUser.map)} in the map, ${pct(sameUser.features)} in feature space (chance ${pct(chance)}; the same images with no history: ${pct(sameUser.featuresWithoutHistory)})` +
          (sameGroup ? `; same taste group: ${pct(sameGroup.map)} / ${pct(sameGroup.features)}` : ''),
      );
      log(`reno: wrote ${files.png} and ${files.json}`);
    }
    return { ...files, points, sameUser, sameUserChance: chance, sameGroup };
  });
}
