// `reno compare`: from one seed, the unoptimised image, one run per reward alone and one with every enabled reward;
// then every output is scored by every reward (a cross table). Writes a labelled grid PNG, compare.json, compare.md
// and report.html next to the runs' own folders.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useBackend } from '../runtime/backend.js';
import type { RunConfig } from '../config/run-config.js';
import { escapeXml, page } from '../report/html.js';
import { imageGrid } from '../report/charts.js';
import { UsageError } from '../errors.js';
import { markdownTable, scoreFiles } from '../run/cross-score.js';
import { checkWritableDir, keepIfValid, makeDirs, newRunDir, writeFileAtomic } from '../util/files.js';
import { stopFlag, withInterrupt } from '../run/interrupt.js';
import { rewardSpec } from '../../rewards/index.js';
import { activeRewardNames, openSession, PERSONAL, runGeneration, runSize } from '../run/session.js';
import { modelPlaces, personalOptions } from './common.js';
import { generateConfig, type GenerateOptions } from './generate.js';

export interface CompareOptions extends GenerateOptions {
  /** reward names to compare (default: every reward the config enables) */
  rewards?: string[];
}

/** What a finished (or interrupted) compare folder holds; without one of them a failed compare removes its folder. */
const COMPARE_FOLDER_FILES = ['compare.json', 'compare.md', 'grid.png', 'report.html'];

export interface CompareResult {
  dir: string;
  runs: { name: string; dir: string; weights: Record<string, number> }[];
  /** scores[i][reward]: the best image of run i scored by every reward */
  scores: Record<string, number>[];
}

export async function compareCommand(o: CompareOptions): Promise<CompareResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const config = generateConfig(o);
  const places = modelPlaces(o);
  // the general rewards the config enables; with a user, the personal reward is always one of the columns
  const enabled = activeRewardNames(config.weights, false).active;
  const chosen = o.rewards?.length ? [...new Set(o.rewards)] : enabled;
  for (const n of chosen) rewardSpec(n); // validates every name
  if (chosen.includes(PERSONAL) && !o.user) throw new UsageError('the personal reward needs --user history.json');
  const names = o.user ? [...chosen.filter((n) => n !== PERSONAL), PERSONAL] : chosen;
  if (!names.length) throw new UsageError('no reward to compare: enable some with --weights.NAME or name them with --rewards');
  const personal = personalOptions(o.user, config.guidance, config.n_ref, o.preferenceModel, {
    mode: config.personal_model,
    tower: config.personal_tower,
    log,
  });
  const root = o.out ?? path.join(process.cwd(), 'outputs');
  checkWritableDir(root, '--out');
  const backend = await useBackend(o.backend, { quiet: o.quiet });
  const session = await openSession({ places, generator: config.generator, rewards: names, personal, backend });
  let dir: string;
  try {
    runSize(session.generator, config); // a bad size fails before the compare folder exists
    dir = newRunDir(root, `compare-${config.prompt}`);
  } catch (e) {
    session.dispose();
    throw e;
  }
  const weightOf = (n: string) => (config.weights[n] > 0 ? config.weights[n] : 1);
  const plan: { name: string; rewards: string[]; cfg: RunConfig }[] = [
    { name: 'unoptimised', rewards: [], cfg: { ...config, optimize: false } },
    ...names.map((n) => ({ name: n, rewards: [n], cfg: { ...config, weights: { [n]: weightOf(n) } } })),
    { name: 'all', rewards: names, cfg: { ...config, weights: Object.fromEntries(names.map((n) => [n, weightOf(n)])) } },
  ];
  const flag = stopFlag();
  const runs: CompareResult['runs'] = [];
  try {
    await withInterrupt(
      flag,
      async () => {
        for (const p of plan) {
          if (flag.requested) break;
          const runDir = path.join(dir, 'runs', p.name);
          makeDirs(runDir);
          const user = p.rewards.includes(PERSONAL) ? { user: personal?.historyFile ?? null } : {};
          await runGeneration(session, p.cfg, p.rewards, runDir, {
            quiet: o.quiet,
            label: p.name,
            shouldStop: () => flag.requested,
            meta: { compare: p.name, ...user },
          });
          runs.push({ name: p.name, dir: runDir, weights: p.cfg.weights });
        }
      },
      log,
    );
    const scores = await scoreFiles(
      session.rewards,
      config.prompt,
      runs.map((r) => path.join(r.dir, 'best.png')),
    );
    await writeCompare(dir, config, names, runs, scores, places.smokeTest);
    if (!o.quiet) log(`reno: wrote ${path.relative(process.cwd(), dir) || dir}`);
    return { dir, runs, scores };
  } catch (e) {
    keepIfValid(dir, COMPARE_FOLDER_FILES); // an incomplete compare folder goes
    throw e;
  } finally {
    session.dispose();
  }
}

async function writeCompare(
  dir: string,
  config: RunConfig,
  names: string[],
  runs: CompareResult['runs'],
  scores: Record<string, number>[],
  smoke: boolean,
): Promise<void> {
  const caption = (r: CompareResult['runs'][number], i: number) =>
    names.includes(r.name) ? `${r.name} score ${scores[i][r.name].toFixed(3)}` : r.name === 'all' ? 'every reward' : 'no optimisation';
  const cells = [runs.map((r, i) => ({ png: fs.readFileSync(path.join(r.dir, 'best.png')), label: caption(r, i) }))];
  const grid = await imageGrid(cells, {
    colLabels: runs.map((r) => (r.name === 'all' ? 'all rewards' : r.name === 'unoptimised' ? 'unoptimised' : `${r.name} only`)),
    title: `"${config.prompt}" (seed ${config.seed})`,
  });
  writeFileAtomic(path.join(dir, 'grid.png'), grid);
  const json = {
    prompt: config.prompt,
    seed: config.seed,
    smoke_test: smoke,
    rewards: names,
    runs: runs.map((r, i) => ({ ...r, dir: path.relative(dir, r.dir), scores: scores[i] })),
  };
  writeFileAtomic(path.join(dir, 'compare.json'), JSON.stringify(json, null, 2) + '\n');
  const md =
    `# reno compare: "${config.prompt}" (seed ${config.seed})\n\n` +
    (smoke ? 'Smoke test (tiny random models): the numbers are not meaningful.\n\n' : '') +
    "Rows: the run (what it optimised); columns: every reward's score of its best image (higher is better).\n\n" +
    markdownTable(
      'run \\ score',
      runs.map((r) => r.name),
      names,
      (i, j) => scores[i][names[j]].toFixed(4),
    );
  writeFileAtomic(path.join(dir, 'compare.md'), md);
  const table = `<table><tr><th>run \\ score</th>${names.map((n) => `<th>${escapeXml(n)}</th>`).join('')}</tr>${runs
    .map((r, i) => {
      const best = (n: string) => Math.max(...scores.map((s) => s[n]));
      return `<tr><th><a href="runs/${escapeXml(r.name)}/report.html">${escapeXml(r.name)}</a></th>${names.map((n) => `<td${scores[i][n] === best(n) ? ' style="font-weight:bold"' : ''}>${scores[i][n].toFixed(4)}</td>`).join('')}</tr>`;
    })
    .join('')}</table>`;
  const body = `<h1>reno compare</h1><p>Prompt: <b>${escapeXml(config.prompt)}</b>, seed ${config.seed}</p>${smoke ? '<p class="note">Smoke test: tiny random models.</p>' : ''}<p><img src="grid.png" alt="grid of the best images" style="max-width:100%"></p><h2>Cross scores</h2><p>Each row is a run, each column a reward's score of that run's best image (higher is better; the best per column is bold).</p>${table}`;
  writeFileAtomic(path.join(dir, 'report.html'), page('reno compare', body));
}
