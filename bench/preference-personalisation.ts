// Does the tiny preference model read the user's history? (issue 24; the seed paper's claim on a world where it
// matters.) One command, end to end on a CPU:
//   1. the personalisation world (src/preference/synth.ts PERSONALISATION_WORLD: two taste groups that disagree on
//      the background's lightness, 100 users x 30 pairs, a fifth unseen) and its ceilings from the world's truth:
//      one taste for everyone (population), the user's taste group (group oracle), the user's own utility (Bayes);
//   2. `reno preference train --preset tiny` with its defaults (TRAIN_DEFAULTS.tiny; nothing overridden but the
//      seed, and no evaluation inside training);
//   3. `reno preference eval` (N_ref sweep 0, 1, 2, 4, 8 and the swapped-history control, no reward baselines);
//   4. the summary on unseen and on seen users: top-1 with the user's own history (at the checkpoint's n_ref), with
//      N_ref 0, with a swapped history (a user of the other taste group), and the three ceilings; then the goal:
//      unseen own history >= 72 %, >= 10 points above N_ref 0 and above the swapped history, the sweep rising (at
//      least 5 points from N_ref 0 to 8, no step down by more than 2).
//   npx tsx bench/preference-personalisation.ts [--seed 1] [--out DIR] [--backend wasm]
// Everything (world, checkpoint, eval/tables.md, eval/tables.json, summary.json) stays in --out (default a new
// temporary folder).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { personalisationWorld } from '../src/preference/synth.js';
import type { WorldCeilings } from '../src/preference/ceilings.js';
import { preferenceEval } from '../src/commands/preference-eval.js';
import { preferenceSynth, preferenceTrain, TRAIN_DEFAULTS } from '../src/commands/preference.js';
import { packageRoot } from '../src/paths.js';
import { flag, machine } from './util.js';

const seed = Number(flag('seed', '1'));
const backend = flag('backend', 'wasm');
const out = path.resolve(flag('out', fs.mkdtempSync(path.join(os.tmpdir(), 'reno-preference-personalisation-'))));
const t0 = Date.now();
const secs = (t: number) => ((Date.now() - t) / 1000).toFixed(0);
const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? 'n/a' : (100 * x).toFixed(1));
const say = (l: string) => console.log(l);
say(`# preference personalisation benchmark, tiny preset, backend ${backend}, seed ${seed}, ${new Date().toISOString()}`);
say(
  `# ${machine()}; load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
say(`# training: TRAIN_DEFAULTS.tiny ${JSON.stringify(TRAIN_DEFAULTS.tiny)}`);
fs.mkdirSync(out, { recursive: true });

// 1. the world
const data = path.join(out, 'world');
let t = Date.now();
let ceilings: WorldCeilings;
if (fs.existsSync(path.join(data, 'pairs.jsonl'))) ceilings = JSON.parse(fs.readFileSync(path.join(data, 'ceilings.json'), 'utf8'));
else ceilings = (await preferenceSynth({ out: data, seed, ...personalisationWorld(), log: (l) => say(`# ${l}`) })).ceilings;
say(`# world ${JSON.stringify({ ...personalisationWorld(), seed })} in ${secs(t)} s`);

// 2. training with the preset's defaults
const ckpt = path.join(out, 'checkpoint');
const backbone = path.join(packageRoot(), 'presets', 'tiny', 'HuggingFaceTB', 'SmolVLM-256M-Instruct');
t = Date.now();
const tr = await preferenceTrain({ data, out: ckpt, force: true, backbone, preset: 'tiny', seed, evalPairs: 0, backend, quiet: true, log: () => {} });
const trainSeconds = (Date.now() - t) / 1000;
say(`# trained in ${trainSeconds.toFixed(0)} s (${tr.state.stage === 2 ? 'stages 1 + 2' : 'stage 1'})`);

// 3. evaluation
t = Date.now();
const nRef = [0, 1, 2, 4, 8];
const r = await preferenceEval({
  model: [{ label: 'tiny', dir: ckpt }],
  data,
  baselines: [],
  nRef,
  controls: ['swap'],
  out: path.join(out, 'eval'),
  backend,
  quiet: true,
  print: () => {},
});
const evalSeconds = (Date.now() - t) / 1000;
say(`# evaluated in ${evalSeconds.toFixed(0)} s: ${r.protocol.queries.seen} seen + ${r.protocol.queries.unseen} unseen query pairs`);

// 4. summary
const main = r.models.find((m) => m.kind === 'checkpoint')!;
const swapped = r.models.find((m) => m.kind === 'swapped');
const at = (n: number, g: 'seen' | 'unseen') => main.sweep?.find((s) => s.nRef === n)?.accuracy[g];
say('');
say(`| users | own history (N_ref ${main.nRef}) | N_ref 0 | swapped history | population taste | group oracle | Bayes |`);
say('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const g of ['unseen', 'seen'] as const)
  say(
    `| ${g} | ${pct(main.top1[g])} | ${pct(at(0, g))} | ${pct(swapped?.top1[g])} | ${pct(ceilings[g].population)} | ${pct(ceilings[g].group)} | ${pct(ceilings[g].bayes)} |`,
  );
say('');
say(`| users | ${nRef.map((n) => `N_ref ${n}`).join(' | ')} |`);
say(`| --- | ${nRef.map(() => '---:').join(' | ')} |`);
for (const g of ['unseen', 'seen'] as const) say(`| ${g} | ${nRef.map((n) => pct(at(n, g))).join(' | ')} |`);
const own = main.top1.unseen;
const zero = at(0, 'unseen') ?? NaN;
const sw = swapped?.top1.unseen ?? NaN;
const sweep = nRef.map((n) => at(n, 'unseen') ?? NaN);
// rising: at least 5 points from N_ref 0 to the longest history, and no step down by more than 2 points
const rising = sweep[sweep.length - 1] - sweep[0] >= 0.05 && sweep.every((v, i) => i === 0 || v >= sweep[i - 1] - 0.02);
const goals = {
  own_at_least_72: own >= 0.72,
  own_10_above_nref0: own - zero >= 0.1,
  own_10_above_swapped: own - sw >= 0.1,
  sweep_rising: rising,
};
say('');
say(
  `# goal on unseen users: ${Object.entries(goals)
    .map(([k, v]) => `${k} ${v ? 'met' : 'NOT met'}`)
    .join(', ')}`,
);
const total = (Date.now() - t0) / 1000;
say(`# total ${total.toFixed(0)} s (${(total / 60).toFixed(1)} min); tables in ${path.join(out, 'eval')}`);
fs.writeFileSync(
  path.join(out, 'summary.json'),
  JSON.stringify(
    {
      seed,
      backend,
      date: new Date().toISOString(),
      machine: machine(),
      train_defaults: TRAIN_DEFAULTS.tiny,
      seconds: { train: trainSeconds, eval: evalSeconds, total },
      ceilings,
      top1: { own: main.top1, n_ref: main.nRef, nref0: { seen: at(0, 'seen'), unseen: at(0, 'unseen') }, swapped: swapped?.top1 },
      sweep: main.sweep,
      goals,
    },
    null,
    2,
  ) + '\n',
);
process.exit(0); // wasm pthread workers (RENO_WASM_THREADS > 1) would keep the process alive
