// A procedural "taste world" for training and testing the preference model without downloads: 64x64 images of
// simple shapes with clear visual attributes, and users whose likes follow a utility over those attributes.
//   content (named by the prompt, shared by both images of a pair): shape (circle, square, triangle, star, ring)
//     and count (1-3), e.g. "two stars";
//   style (what users care about, different in the two images): colour (6), background (5), texture (flat,
//     striped, dotted, glowing), size (small, large).
// Utility of an image for user u: w_u . f(image), f = 4 taste features (tasteFeatures: warm colour, light
// background, patterned texture, large size), with
//   w_u = w_global + w_group(u) + w_individual(u),   w_global ~ N(0, 1.5), w_group ~ N(0, 1), w_individual ~ N(0, 0.4)
// (4 shared taste groups by default; the shared taste dominates, as in Pick-a-Pic where a context-free scorer is
// already strong); P(A liked over B) = sigmoid(temperature (U(A) - U(B)))
// (Bradley-Terry), and the label is drawn from it. A share of users is unseen (all their pairs are test pairs).
// world.json records the weights and the accuracy of oracles (the true utility; global taste only; global + group)
// on the test pairs, to read a model's accuracy against. Deterministic for a seed (seedrandom everywhere).
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import sharp from 'sharp';
import { UsageError } from '../errors.js';
import { makeDirs, writeFileAtomic } from '../util/files.js';
import type { Split } from './data.js';
import { worldCeilings, type TruthPair, type WorldCeilings } from './ceilings.js';

export const STYLE = {
  colour: ['red', 'orange', 'yellow', 'green', 'blue', 'purple'],
  background: ['white', 'black', 'grey', 'sky', 'sand'],
  texture: ['flat', 'striped', 'dotted', 'glowing'],
  size: ['small', 'large'],
} as const;
export type StyleAttr = keyof typeof STYLE;
const ATTRS = Object.keys(STYLE) as StyleAttr[];
export const SHAPES = ['circle', 'square', 'triangle', 'star', 'ring'] as const;

const RGB: Record<string, [number, number, number]> = {
  red: [215, 40, 40],
  orange: [240, 140, 30],
  yellow: [235, 210, 40],
  green: [45, 165, 70],
  blue: [40, 90, 220],
  purple: [140, 60, 190],
  white: [245, 245, 242],
  black: [22, 22, 28],
  grey: [128, 128, 128],
  sky: [150, 200, 240],
  sand: [225, 205, 160],
};

export interface ImageSpec {
  shape: (typeof SHAPES)[number];
  count: number;
  colour: string;
  background: string;
  texture: string;
  size: string;
  /** Layout jitter: rotation (radians) and offset (pixels). */
  angle: number;
  dx: number;
  dy: number;
}

export interface SynthOptions {
  out: string;
  users?: number;
  seed?: number;
  /** Pairs per user (default 24). */
  pairsPerUser?: number;
  /** Shared taste groups (default 4). */
  groups?: number;
  /** Fraction of users kept unseen (default 0.2). */
  unseen?: number;
  /** Bradley-Terry temperature (default 2). */
  temperature?: number;
  /** Image side in pixels (default 64). */
  size?: number;
  /** The shared taste (weights of TASTE_FEATURES; default drawn from N(0, globalStd)). */
  globalTaste?: number[];
  /** The groups' tastes (one weight vector of TASTE_FEATURES per group; default drawn from N(0, groupStd)); sets the
   * number of groups. */
  groupTastes?: number[][];
  /** Standard deviations of the global, group and individual taste weights (default 1.5, 1.0, 0.4). */
  globalStd?: number;
  groupStd?: number;
  individualStd?: number;
}

/**
 * The taste features of an image (each about -1 .. 1): warmth of the shape's colour ((R - B) / 255), lightness of
 * the background (luminance, centred), how patterned the texture is (flat -1, glowing -0.3, dotted 0.4, striped 1)
 * and size (small -1, large 1). A user's utility is linear in them: their taste is a point in this 4-d space.
 */
export const TASTE_FEATURES = ['warm_colour', 'light_background', 'patterned', 'large'] as const;
const PATTERN: Record<string, number> = { flat: -1, glowing: -0.3, dotted: 0.4, striped: 1 };

export function tasteFeatures(img: Pick<ImageSpec, StyleAttr>): number[] {
  const [r, , b] = RGB[img.colour];
  const [br, bgg, bb] = RGB[img.background];
  return [(r - b) / 255, (0.299 * br + 0.587 * bgg + 0.114 * bb) / 127.5 - 1, PATTERN[img.texture], img.size === 'large' ? 1 : -1];
}

type Weights = number[];

/**
 * The personalisation world (issue 24; bench/preference-personalisation.ts, the tiny preset's checkpoint): two taste
 * groups that disagree on the feature the tiny vision tower reads best, the background's lightness (one likes light
 * backgrounds, the other dark ones, weight +-3), a small shared taste for large shapes (0.5) and individual variation
 * (std 0.3), temperature 2. One taste for everyone can then only follow the shared size taste (56-60 % on unseen
 * users' test pairs for seeds 1-3), while knowing the user's group reaches 86-88 %: a model must read the history.
 * 100 users x 30 pairs, a fifth unseen.
 */
export const PERSONALISATION_WORLD = {
  users: 100,
  pairsPerUser: 30,
  globalTaste: [0, 0, 0, 0.5],
  groupTastes: [
    [0, 3, 0, 0],
    [0, -3, 0, 0],
  ],
  individualStd: 0.3,
  temperature: 2,
} as const satisfies Partial<SynthOptions>;

/** PERSONALISATION_WORLD as mutable SynthOptions (fresh arrays). */
export function personalisationWorld(): Partial<SynthOptions> {
  const w = PERSONALISATION_WORLD;
  return { ...w, globalTaste: [...w.globalTaste], groupTastes: w.groupTastes.map((g) => [...g]) };
}

function gauss(rng: () => number): number {
  let u = rng();
  while (u <= Number.EPSILON) u = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

const randomWeights = (rng: () => number, std: number): Weights => TASTE_FEATURES.map(() => gauss(rng) * std);
const addW = (...ws: Weights[]): Weights => TASTE_FEATURES.map((_, i) => ws.reduce((s, w) => s + w[i], 0));

export function utility(w: Weights, img: Pick<ImageSpec, StyleAttr>): number {
  return tasteFeatures(img).reduce((s, f, i) => s + f * w[i], 0);
}

const COUNT_WORDS = ['', 'a', 'two', 'three'];
export function promptOf(img: Pick<ImageSpec, 'shape' | 'count'>): string {
  return `${COUNT_WORDS[img.count]} ${img.shape}${img.count > 1 ? 's' : ''}`;
}

/** Signed distance (in units of the shape radius; < 0 inside) of point q (shape frame, radius 1). */
function shapeDistance(shape: ImageSpec['shape'], x: number, y: number): number {
  const r = Math.hypot(x, y);
  const polygon = (n: number, rad: number) => {
    let d = -Infinity;
    for (let i = 0; i < n; i++) {
      const a = (2 * Math.PI * (i + 0.5)) / n - Math.PI / 2;
      d = Math.max(d, x * Math.cos(a) + y * Math.sin(a) - rad * Math.cos(Math.PI / n));
    }
    return d;
  };
  switch (shape) {
    case 'circle':
      return r - 1;
    case 'square':
      return polygon(4, 1.05);
    case 'triangle':
      return polygon(3, 1.25);
    case 'star': {
      const t = Math.atan2(y, x) + Math.PI / 2;
      const k = 0.5 + 0.5 * Math.cos(5 * t);
      return r - (0.5 + 0.65 * k * k);
    }
    case 'ring':
      return Math.abs(r - 0.72) - 0.28;
  }
}

/** Render one image as 8-bit RGB (side x side x 3). */
export function renderImage(img: ImageSpec, side = 64): Buffer {
  const s = side / 64;
  const bg = RGB[img.background];
  const fg = RGB[img.colour];
  const radius = (img.size === 'large' ? 15 : 9) * (img.count === 1 ? 1 : img.count === 2 ? 0.75 : 0.62) * s;
  const spread = (img.count === 2 ? 14 : 15) * s;
  const centres = Array.from({ length: img.count }, (_, i) => {
    if (img.count === 1) return [side / 2 + img.dx * s, side / 2 + img.dy * s];
    const a = img.angle + (2 * Math.PI * i) / img.count;
    return [side / 2 + img.dx * s + spread * Math.cos(a), side / 2 + img.dy * s + spread * Math.sin(a)];
  });
  const out = Buffer.alloc(side * side * 3);
  const ca = Math.cos(img.angle);
  const sa = Math.sin(img.angle);
  const col = [0, 0, 0];
  const c = [0, 0, 0];
  for (let py = 0; py < side; py++) {
    for (let px = 0; px < side; px++) {
      col[0] = bg[0];
      col[1] = bg[1];
      col[2] = bg[2];
      for (const [cx, cy] of centres) {
        const ux = (px + 0.5 - cx) / radius;
        const uy = (py + 0.5 - cy) / radius;
        if (ux * ux + uy * uy > 9) continue; // far from this shape (and its halo)
        const x = ca * ux + sa * uy; // rotate into the shape's frame
        const y = -sa * ux + ca * uy;
        const d = shapeDistance(img.shape, x, y) * radius; // pixels
        const cover = Math.min(1, Math.max(0, 0.5 - d));
        let k = 1;
        let lift = 0;
        if (img.texture === 'striped' && Math.floor((x + y) * 2.2 + 10) % 2 === 0) k = 0.45;
        else if (img.texture === 'dotted') {
          const gx = x * 2.5 - Math.round(x * 2.5);
          const gy = y * 2.5 - Math.round(y * 2.5);
          if (Math.hypot(gx, gy) < 0.3) lift = 0.65;
        } else if (img.texture === 'glowing') {
          k = 1.3 - 0.7 * Math.min(1, Math.hypot(x, y));
          lift = -1; // marker: add 30 after scaling
          const halo = d > 0 ? Math.exp(-d / (3 * s)) * 0.6 : 0;
          for (let i = 0; i < 3; i++) col[i] += (fg[i] - col[i]) * halo;
        }
        for (let i = 0; i < 3; i++) {
          c[i] = lift > 0 ? fg[i] + (255 - fg[i]) * lift : lift < 0 ? Math.min(255, fg[i] * k + 30) : fg[i] * k;
          col[i] += (c[i] - col[i]) * cover;
        }
      }
      const o = (py * side + px) * 3;
      for (let i = 0; i < 3; i++) out[o + i] = Math.round(Math.min(255, Math.max(0, col[i])));
    }
  }
  return out;
}

function pick<T>(xs: readonly T[], rng: () => number): T {
  return xs[Math.floor(rng() * xs.length)];
}

function randomStyle(rng: () => number): Pick<ImageSpec, StyleAttr> {
  return { colour: pick(STYLE.colour, rng), background: pick(STYLE.background, rng), texture: pick(STYLE.texture, rng), size: pick(STYLE.size, rng) };
}

export interface SynthResult {
  dir: string;
  pairs: number;
  images: number;
  users: { seen: number; unseen: number };
  /** Oracle accuracies on the test pairs (see the header). */
  oracle: Record<string, number>;
  /** The world's ceilings on the test pairs of unseen and of seen users (src/preference/ceilings.ts). */
  ceilings: WorldCeilings;
}

/** Write DIR/images, DIR/pairs.jsonl and DIR/world.json. */
export async function writeTasteWorld(o: SynthOptions): Promise<SynthResult> {
  const nUsers = o.users ?? 40;
  const seed = o.seed ?? 0;
  const perUser = o.pairsPerUser ?? 24;
  const nGroups = o.groupTastes?.length ?? o.groups ?? 4;
  const temp = o.temperature ?? 2;
  const side = o.size ?? 64;
  if (!(Number.isInteger(nUsers) && nUsers >= 2)) throw new UsageError(`--users must be an integer >= 2, found ${nUsers}`);
  if (!(Number.isInteger(perUser) && perUser >= 6)) throw new UsageError(`pairs per user must be an integer >= 6, found ${perUser}`);
  const nUnseen = Math.max(1, Math.round(nUsers * (o.unseen ?? 0.2)));
  // a seen user's last pairs are held out: a quarter for test, a twelfth for val (6 and 2 of 24)
  const nTest = Math.max(1, Math.round(perUser / 4));
  const nVal = Math.max(1, Math.round(perUser / 12));
  const rng = seedrandom(`reno-taste-world:${seed}`);
  const std = { global: o.globalStd ?? 1.5, group: o.groupStd ?? 1.0, individual: o.individualStd ?? 0.4 };
  let global = randomWeights(rng, std.global);
  if (o.globalTaste) {
    if (o.globalTaste.length !== TASTE_FEATURES.length || !o.globalTaste.every(Number.isFinite))
      throw new UsageError(`globalTaste must be ${TASTE_FEATURES.length} numbers (${TASTE_FEATURES.join(', ')})`);
    global = [...o.globalTaste];
  }
  let groups = Array.from({ length: nGroups }, () => randomWeights(rng, std.group));
  if (o.groupTastes) {
    if (!o.groupTastes.length || !o.groupTastes.every((g) => g.length === TASTE_FEATURES.length && g.every(Number.isFinite)))
      throw new UsageError(`groupTastes must be one or more lists of ${TASTE_FEATURES.length} numbers (${TASTE_FEATURES.join(', ')})`);
    groups = o.groupTastes.map((g) => [...g]);
  }
  const out = path.resolve(o.out);
  makeDirs(path.join(out, 'images'));
  const lines: string[] = [];
  const userInfo: Record<string, { group: number; unseen: boolean }> = {};
  const oracle = { true_utility: 0, global_taste: 0, group_taste: 0, label_ceiling: 0 };
  let testPairs = 0;
  let nImages = 0;
  const truth: TruthPair[] = [];
  for (let u = 0; u < nUsers; u++) {
    const user = `u${String(u).padStart(3, '0')}`;
    const group = u % nGroups;
    const unseen = u >= nUsers - nUnseen;
    userInfo[user] = { group, unseen };
    const w = addW(global, groups[group], randomWeights(rng, std.individual));
    const groupW = addW(global, groups[group]);
    makeDirs(path.join(out, 'images', user));
    for (let p = 0; p < perUser; p++) {
      const content = { shape: pick(SHAPES, rng), count: 1 + Math.floor(rng() * 3) };
      const jitter = () => ({ angle: rng() * 2 * Math.PI, dx: (rng() - 0.5) * 6, dy: (rng() - 0.5) * 6 });
      const a: ImageSpec = { ...content, ...randomStyle(rng), ...jitter() };
      let b: ImageSpec = { ...content, ...randomStyle(rng), ...jitter() };
      while (ATTRS.every((k) => a[k] === b[k])) b = { ...b, ...randomStyle(rng) };
      const pA = 1 / (1 + Math.exp(-temp * (utility(w, a) - utility(w, b))));
      const aLiked = rng() < pA;
      const [liked, disliked] = aLiked ? [a, b] : [b, a];
      const split: Split = unseen ? 'test' : p < perUser - nVal - nTest ? 'train' : p < perUser - nTest ? 'val' : 'test';
      const files = ['a', 'b'].map((s) => `images/${user}/p${String(p).padStart(3, '0')}${s}.png`);
      for (const [i, img] of [a, b].entries()) {
        const png = await sharp(renderImage(img, side), { raw: { width: side, height: side, channels: 3 } })
          .png()
          .toBuffer();
        writeFileAtomic(path.join(out, files[i]), png);
        nImages++;
      }
      const [likedFile, dislikedFile] = aLiked ? files : [files[1], files[0]];
      const style = (x: ImageSpec) => Object.fromEntries(ATTRS.map((k) => [k, x[k]]));
      lines.push(
        JSON.stringify({
          user,
          prompt: promptOf(content),
          liked: likedFile,
          disliked: dislikedFile,
          split,
          meta: { liked: style(liked), disliked: style(disliked), p_liked: aLiked ? pA : 1 - pA },
        }),
      );
      const fl = tasteFeatures(liked);
      const fd = tasteFeatures(disliked);
      truth.push({
        diff: fl.map((x, i) => x - fd[i]),
        pLiked: aLiked ? pA : 1 - pA,
        user: w,
        group: groupW,
        test: split !== 'test' ? null : unseen ? 'unseen' : 'seen',
      });
      if (split === 'test') {
        testPairs++;
        const right = (ww: Weights) => {
          const d = utility(ww, liked) - utility(ww, disliked);
          return d > 0 ? 1 : d === 0 ? 0.5 : 0;
        };
        oracle.true_utility += right(w);
        oracle.global_taste += right(global);
        oracle.group_taste += right(groupW);
        oracle.label_ceiling += Math.max(pA, 1 - pA);
      }
    }
  }
  for (const k of Object.keys(oracle) as (keyof typeof oracle)[]) oracle[k] = testPairs ? oracle[k] / testPairs : NaN;
  const ceil = worldCeilings(truth, TASTE_FEATURES.length);
  const world = {
    seed,
    users: nUsers,
    pairs_per_user: perUser,
    groups: nGroups,
    temperature: temp,
    weight_std: std,
    image_size: side,
    style: STYLE,
    shapes: SHAPES,
    taste_features: TASTE_FEATURES,
    weights: { global, groups },
    user_info: userInfo,
    oracle_test_accuracy: oracle,
    ceilings: ceil,
  };
  writeFileAtomic(path.join(out, 'world.json'), JSON.stringify(world, null, 1) + '\n');
  writeFileAtomic(path.join(out, 'ceilings.json'), JSON.stringify(ceil, null, 2) + '\n');
  writeFileAtomic(path.join(out, 'pairs.jsonl'), lines.join('\n') + '\n'); // last: a complete pairs.jsonl means a complete world
  return { dir: out, pairs: lines.length, images: nImages, users: { seen: nUsers - nUnseen, unseen: nUnseen }, oracle, ceilings: ceil };
}
