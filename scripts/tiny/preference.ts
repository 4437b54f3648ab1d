// The tiny preset's preference checkpoint (presets/tiny/reno/preference-tiny, where the personal reward looks in a
// smoke test) and two example user histories (examples/history.json and examples/history-opposite.json, images in
// examples/images/), all from one synthetic taste world (src/preference/synth.ts) with a fixed seed:
//   - the world: the personalisation world (PERSONALISATION_WORLD: two taste groups, one liking light backgrounds
//     and one dark ones, a small shared taste for large shapes), so the two example users disagree;
//   - the checkpoint: `reno preference train --preset tiny` defaults (src/commands/preference.ts TRAIN_DEFAULTS.tiny)
//     on the wasm backend;
//   - the example users: the first unseen user of the world (none of their pairs was trained on) and the first
//     unseen user of the other taste group, six pairs each.
// The committed config.json names the backbone relative to the checkpoint and drops machine paths; the optimizer
// state is not shipped (the preset is for scoring, not for --resume).
//   npx tsx scripts/tiny/preference.ts [preset-root]      (the backbone must already be in preset-root)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TINY_PREFERENCE_DIR } from '../../rewards/personal.js';
import { readPreferenceDataset } from '../../src/preference/data.js';
import { personalisationWorld, writeTasteWorld } from '../../src/preference/synth.js';
import { preferenceTrain } from '../../src/commands/preference.js';
import { packageRoot } from '../../src/paths.js';
import { SEED, writeJson } from './common.js';
import { SMOLVLM_REPO } from './smolvlm.js';

/** The world: the personalisation world with the preset's seed. */
export const TINY_WORLD = { world: 'personalisation', seed: SEED % 100000 } as const;
/** Pairs in examples/history.json. */
const EXAMPLE_PAIRS = 6;

export interface TinyPreferenceResult {
  checkpoint: string;
  history: string;
  /** A user of the other taste group. */
  historyOpposite: string;
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
    await writeTasteWorld({ out: world, ...personalisationWorld(), seed: TINY_WORLD.seed });
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
    cfg.training.data = `synthetic taste world (src/preference/synth.ts PERSONALISATION_WORLD ${JSON.stringify({ ...personalisationWorld(), seed: TINY_WORLD.seed })}), written by scripts/tiny/preference.ts`;
    writeJson(cfgFile, cfg);
    const worldJson = JSON.parse(fs.readFileSync(path.join(world, 'world.json'), 'utf8'));
    writeJson(path.join(out, 'taste-world.json'), worldJson);
    // the example users: the first unseen user and the first unseen user of another taste group
    const ds = readPreferenceDataset(world);
    const groups = worldJson.user_info as Record<string, { group: number }>;
    const unseen = [...ds.byUser.keys()].filter((u) => !ds.seen.has(u));
    const first = unseen[0];
    const opposite = unseen.find((u) => groups[u].group !== groups[first].group);
    if (!opposite) throw new Error('writeTinyPreference: no unseen user of another taste group');
    const examples = o.examplesDir ?? path.join(packageRoot(), 'examples');
    fs.rmSync(path.join(examples, 'images'), { recursive: true, force: true });
    fs.mkdirSync(path.join(examples, 'images'), { recursive: true });
    const writeHistory = (user: string, file: string, prefix: string) => {
      const pairs = ds.byUser
        .get(user)!
        .slice(0, EXAMPLE_PAIRS)
        .map((i) => ds.pairs[i]);
      const entries = pairs.map((p, i) => {
        const name = (kind: string) => `images/${prefix}${i + 1}-${kind}.png`;
        fs.copyFileSync(p.liked, path.join(examples, name('liked')));
        fs.copyFileSync(p.disliked, path.join(examples, name('disliked')));
        return { prompt: p.prompt, liked: name('liked'), disliked: name('disliked') };
      });
      const out = path.join(examples, file);
      writeJson(out, { user: `taste-world-${user}`, pairs: entries });
      return out;
    };
    const history = writeHistory(first, 'history.json', 'pair');
    const historyOpposite = writeHistory(opposite, 'history-opposite.json', 'opposite-pair');
    log(`reno: tiny preference checkpoint in ${out} (${r.seconds.toFixed(0)} s); example histories ${history}, ${historyOpposite}`);
    return { checkpoint: out, history, historyOpposite, seconds: r.seconds, eval: r.eval };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(process.argv[2] ?? path.join(packageRoot(), 'presets', 'tiny'));
  const r = await writeTinyPreference(root, { quiet: false });
  console.log(JSON.stringify(r.eval));
}
