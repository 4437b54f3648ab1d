// The embedding personal model's guidance over seeds: `reno generate --preset tiny --user examples/history.json
// --personal embedding` with only the personal reward, like and dislike from the same seed, and the embedding
// score (the reward's own code path) of init.png and best.png. Issue 18's check: the best image scores higher than
// the initial one for like and lower for dislike on at least 4 of 5 seeds (test/e2e/personal-embedding.test.ts runs
// one seed).
//   npx tsx bench/personal-embedding.ts [--seeds 5] [--steps 6] [--backend wasm]   (the default formula)
import * as tf from '../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RewardInput } from '../rewards/input.js';
import { personalReward } from '../rewards/personal.js';
import { DEFAULT_FORMULA } from '../rewards/personal-embedding.js';
import { generateCommand } from '../src/commands/generate.js';
import { REWARDS } from '../rewards/index.js';
import { readImage } from '../src/image/png.js';
import { getModel } from '../src/config/models.js';
import { packageRoot } from '../src/paths.js';
import { flag, machine } from './util.js';

const seeds = Number(flag('seeds', '5'));
const steps = Number(flag('steps', '6'));
const formula = DEFAULT_FORMULA;
const backendName = flag('backend', 'wasm');
const ROOT = packageRoot();
const HISTORY = path.join(ROOT, 'examples', 'history.json');
const TINY = path.join(ROOT, 'presets', 'tiny');
const PROMPT = 'a circle';
const ONLY_PERSONAL = { weights: { ...Object.fromEntries(REWARDS.map((r) => [r.name, 0])), personal: 1 }, personal_model: 'embedding' };

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'reno-bench-emb-'));
const rows: string[] = [];
let ok = 0;
for (let seed = 0; seed < seeds; seed++) {
  const dirs: Record<string, string> = {};
  for (const guidance of ['like', 'dislike'] as const) {
    const r = await generateCommand({
      prompt: PROMPT,
      preset: 'tiny',
      user: HISTORY,
      guidance,
      steps,
      seed,
      out,
      backend: backendName,
      quiet: true,
      overrides: ONLY_PERSONAL,
      log: () => {},
    });
    dirs[guidance] = r.dir;
  }
  const reward = await personalReward.load({
    locate: (m) => path.join(TINY, getModel(m).repo),
    smokeTest: true,
    personal: { historyFile: HISTORY, guidance: 'like', nRef: 8, mode: 'embedding', formula, log: () => {} },
  });
  const p = reward.prepare(PROMPT);
  const score = async (f: string) => {
    const img = await readImage(f);
    const input = new RewardInput(img as never);
    const s = p.score(input);
    const v = (await s.data())[0];
    tf.dispose([s, img as never]);
    input.dispose();
    return v;
  };
  const li = await score(path.join(dirs.like, 'init.png'));
  const lb = await score(path.join(dirs.like, 'best.png'));
  const di = await score(path.join(dirs.dislike, 'init.png'));
  const db = await score(path.join(dirs.dislike, 'best.png'));
  p.dispose();
  reward.dispose();
  const pass = lb > li && db < di;
  if (pass) ok++;
  rows.push(`| ${seed} | ${li.toFixed(3)} | ${lb.toFixed(3)} | ${di.toFixed(3)} | ${db.toFixed(3)} | ${pass ? 'yes' : 'no'} |`);
}
console.log(`embedding personal model (${formula}, pickscore tower, tiny preset), ${steps} steps, ${backendName}; ${machine()}`);
console.log('| seed | like: init | like: best | dislike: init | dislike: best | both moved the right way |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(r);
console.log(`${ok} of ${seeds} seeds`);
fs.rmSync(out, { recursive: true, force: true });
if (ok < Math.ceil(0.8 * seeds)) process.exitCode = 1;
