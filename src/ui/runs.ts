// The Browse page's data: every folder under the outputs root that is a run folder (run.yaml, best.png, report.html;
// README "A run folder"), a compare folder (compare.json, grid.png) or a sweep folder (summary.csv, grid.png),
// newest first. Each names the files the page links to (relative to the outputs root); nothing here writes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { RUN_FOLDER_FILES } from '../run/session.js';

export interface RunEntry {
  kind: 'run' | 'compare' | 'sweep';
  /** the folder's name under the outputs root */
  name: string;
  prompt: string;
  seed: number | null;
  steps: number | null;
  /** the best step's record: step, total and every reward (from metrics.jsonl) */
  best: { step: number; total: number; rewards: Record<string, number> } | null;
  init: { total: number } | null;
  stopped: boolean;
  /** files relative to the outputs root */
  images: string[];
  report: string;
  mtime: number;
}

function readYaml(file: string): Record<string, unknown> | null {
  try {
    const v = YAML.parse(fs.readFileSync(file, 'utf8'));
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function metrics(file: string): { step: number; total: number; rewards: Record<string, number>; best: boolean }[] {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // an interrupted append leaves at most one incomplete last line
    }
  }
  return out;
}

export function runEntry(root: string, name: string): RunEntry | null {
  const dir = path.join(root, name);
  const has = (f: string) => fs.existsSync(path.join(dir, f));
  let mtime = 0;
  try {
    const st = fs.statSync(dir);
    if (!st.isDirectory()) return null;
    mtime = st.mtimeMs;
  } catch {
    return null;
  }
  const rel = (f: string) => `${name}/${f}`;
  if (RUN_FOLDER_FILES.every(has)) {
    const cfg = readYaml(path.join(dir, 'run.yaml')) ?? {};
    const recs = metrics(path.join(dir, 'metrics.jsonl'));
    const bests = recs.filter((r) => r.best);
    const b = bests[bests.length - 1] ?? null;
    const steps = typeof cfg.steps === 'number' ? (cfg.optimize === false ? 1 : cfg.steps) : null;
    return {
      kind: 'run',
      name,
      prompt: String(cfg.prompt ?? ''),
      seed: typeof cfg.seed === 'number' ? cfg.seed : null,
      steps,
      best: b && { step: b.step, total: b.total, rewards: b.rewards },
      init: recs[0] ? { total: recs[0].total } : null,
      stopped: steps !== null && recs.length < steps,
      images: ['init.png', 'best.png'].filter(has).map(rel),
      report: rel('report.html'),
      mtime,
    };
  }
  const grid = (kind: 'compare' | 'sweep', prompt: string): RunEntry => ({
    kind,
    name,
    prompt,
    seed: null,
    steps: null,
    best: null,
    init: null,
    stopped: false,
    images: has('grid.png') ? [rel('grid.png')] : [],
    report: rel('report.html'),
    mtime,
  });
  if (has('compare.json') && has('report.html')) {
    let prompt = '';
    try {
      prompt = String((JSON.parse(fs.readFileSync(path.join(dir, 'compare.json'), 'utf8')) as { prompt?: unknown }).prompt ?? '');
    } catch {
      // the grid and the report are still worth showing
    }
    return grid('compare', prompt);
  }
  if (has('summary.csv') && has('report.html')) return grid('sweep', '');
  return null;
}

/** Every run, compare and sweep folder directly under `root`, newest first. */
export function listRuns(root: string): RunEntry[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  return names
    .filter((n) => !n.startsWith('.'))
    .map((n) => runEntry(root, n))
    .filter((e): e is RunEntry => e !== null)
    .sort((a, b) => b.mtime - a.mtime || b.name.localeCompare(a.name));
}
