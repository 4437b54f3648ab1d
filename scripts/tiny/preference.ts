// The tiny preset's preference checkpoint (presets/tiny/reno/preference-tiny, where the personal reward looks in a
// smoke test) and the example user history (examples/history.json + examples/images/), both from one synthetic
// taste world (src/preference/synth.ts) with a fixed seed:
//   - the shared taste: light backgrounds, large shapes, a little warmth, plain textures (weights below); taste
//     groups and individual variation on top (the synth defaults);
//   - the checkpoint: `reno preference train --preset tiny` defaults (src/commands/preference.ts TRAIN_DEFAULTS.tiny:
//     LoRA r 8 / alpha 16 on q,k,v,o, vision tower trained, 10 prototypes, n_ref 3 with 1-3 references per sample,
//     batch 16, lr 3e-3, 100 + 20 steps) on the wasm backend: a few minutes on a CPU;
//   - the example user: the first unseen user of the world (none of their pairs was trained on), six pairs.
// The committed config.json names the backbone relative to the checkpoint and drops machine paths; the optimizer
// state is not shipped (the preset is for scoring, not for --resume).
//   npx tsx scripts/tiny/preference.ts [preset-root]      (the backbone must already be in preset-root)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TINY_PREFERENCE_DIR } from '../../rewards/personal.js';
import { readPreferenceDataset } from '../../src/preference/data.js';
import { writeTasteWorld } from '../../src/preference/synth.js';
import { preferenceTrain } from '../../src/commands/preference.js';
import { packageRoot } from '../../src/paths.js';
import { SEED, writeJson } from './common.js';
import { SMOLVLM_REPO } from './smolvlm.js';

/** The world's shared taste: [warm colour, light background, patterned, large]. */
export const TINY_WORLD_TASTE = [0.5, 2, -0.5, 1];
export const TINY_WORLD = { users: 40, pairsPerUser: 24, seed: SEED % 100000, globalTaste: TINY_WORLD_TASTE } as const;
/** Pairs in examples/history.json. */
const EXAMPLE_PAIRS = 6;

export interface TinyPreferenceResult {
  checkpoint: string;
  history: string;
  seconds: number;
  eval: Record<string, { accuracy: number; n: number }> | undefined;
}

/** Train and write ROOT/reno/preference-tiny and EXAMPLES/history.json (+ EXAMPLES/images). */
export async function writeTinyPreference(
  root: string,
  o: { examplesDir?: string; log?: (l: string) => void; quiet?: boolean } = {},
): Promise<TinyPreferenceResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const backbone = path.join(root, ...SMOLVLM_REPO.split('/'));
  if (!fs.existsSync(path.join(backbone, 'config.json'))) throw new Error(`writeTinyPreference: no tiny SmolVLM in ${backbone} (write it first)`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'reno-taste-world-'));
  try {
    const world = path.join(work, 'world');
    await writeTasteWorld({ out: world, ...TINY_WORLD, globalTaste: [...TINY_WORLD.globalTaste] });
    const out = path.join(root, TINY_PREFERENCE_DIR);
    fs.rmSync(out, { recursive: true, force: true });
    const r = await preferenceTrain({
      data: world,
      out,
      backbone,
      preset: 'tiny',
      seed: TINY_WORLD.seed,
      backend: 'wasm',
      quiet: o.quiet ?? true,
      log,
    });
    // committed files: relative backbone, no machine paths, no optimizer state
    fs.rmSync(path.join(out, 'optimizer.safetensors'), { force: true });
    const cfgFile = path.join(out, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    const rel = path.relative(out, backbone).split(path.sep).join('/');
    cfg.backbone.dir = rel;
    cfg.training.backbone = rel;
    cfg.training.data = `synthetic taste world (rewards/preference/synth.ts ${JSON.stringify(TINY_WORLD)}), written by scripts/tiny/preference.ts`;
    writeJson(cfgFile, cfg);
    const worldJson = JSON.parse(fs.readFileSync(path.join(world, 'world.json'), 'utf8'));
    writeJson(path.join(out, 'taste-world.json'), worldJson);
    // the example user: the first unseen user, their first EXAMPLE_PAIRS pairs
    const ds = readPreferenceDataset(world);
    const unseen = [...ds.byUser.keys()].find((u) => !ds.seen.has(u))!;
    const pairs = ds.byUser
      .get(unseen)!
      .slice(0, EXAMPLE_PAIRS)
      .map((i) => ds.pairs[i]);
    const examples = o.examplesDir ?? path.join(packageRoot(), 'examples');
    fs.rmSync(path.join(examples, 'images'), { recursive: true, force: true });
    fs.mkdirSync(path.join(examples, 'images'), { recursive: true });
    const entries = pairs.map((p, i) => {
      const name = (kind: string) => `images/pair${i + 1}-${kind}.png`;
      fs.copyFileSync(p.liked, path.join(examples, name('liked')));
      fs.copyFileSync(p.disliked, path.join(examples, name('disliked')));
      return { prompt: p.prompt, liked: name('liked'), disliked: name('disliked') };
    });
    const history = path.join(examples, 'history.json');
    writeJson(history, { user: `taste-world-${unseen}`, pairs: entries });
    log(`reno: tiny preference checkpoint in ${out} (${r.seconds.toFixed(0)} s); example history ${history}`);
    return { checkpoint: out, history, seconds: r.seconds, eval: r.eval };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(process.argv[2] ?? path.join(packageRoot(), 'presets', 'tiny'));
  const r = await writeTinyPreference(root, { quiet: false });
  console.log(JSON.stringify(r.eval));
}
