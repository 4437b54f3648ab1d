// Finding model files on disk. Order (README, "Weights and parity"): `--model-dir DIR` (the generator only, one folder in
// the diffusers layout), else `--models-dir DIR` searched as DIR/ORG/NAME, else the Hugging Face cache in the layout
// huggingface_hub writes: <cache>/models--ORG--NAME/{refs/<revision>, snapshots/<commit>/<path>, blobs/<etag>}.
// Nothing here touches the network; src/weights/download.ts fills the same cache.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelNotFoundError } from '../errors.js';
import { getModel, registry, type ModelEntry, type Registry } from '../config/models.js';

export type ModelWhere = 'model-dir' | 'models-dir' | 'hf-cache';

export interface LocateOptions {
  /** The generator's own folder (diffusers layout); ignored for other models. */
  modelDir?: string;
  /** A folder searched as DIR/ORG/NAME for every model. */
  modelsDir?: string;
  /** Environment for HF_HUB_CACHE / HF_HOME (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface ModelLocation {
  /** The folder holding the repo's files (for the HF cache: the snapshot folder). */
  dir: string;
  where: ModelWhere;
  /** The commit hash of the snapshot (HF cache only). */
  revision?: string;
  /** Every required file is present. */
  complete: boolean;
  /** Required files that are absent (a dangling symlink counts as absent). */
  missing: string[];
}

/** One place that was looked at, for messages. */
export interface SearchedPlace {
  where: ModelWhere;
  path: string;
  /** What was found there: "no such folder", "missing: a, b", "complete", ... */
  result: string;
}

export interface SearchResult {
  location: ModelLocation | null;
  searched: SearchedPlace[];
}

const HEX40 = /^[0-9a-f]{40}$/;

function expandHome(p: string, env: NodeJS.ProcessEnv): string {
  if (p === '~' || p.startsWith('~/')) return path.join(env.HOME || os.homedir(), p.slice(1));
  return p;
}

/**
 * The hub cache folder, as huggingface_hub computes it: $HF_HUB_CACHE, else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
 */
export function hfCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return path.resolve(expandHome(env.HF_HUB_CACHE, env));
  if (env.HF_HOME) return path.resolve(expandHome(env.HF_HOME, env), 'hub');
  if (env.XDG_CACHE_HOME) return path.resolve(expandHome(env.XDG_CACHE_HOME, env), 'huggingface', 'hub');
  return path.join(env.HOME || os.homedir(), '.cache', 'huggingface', 'hub');
}

/** "models--ORG--NAME", the cache folder name of a model repo. */
export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

/** <cache>/models--ORG--NAME */
export function hfRepoDir(repo: string, cacheDir: string): string {
  return path.join(cacheDir, repoFolderName(repo));
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Files of `files` that are not regular files under `dir` (stat follows symlinks: a dangling link is missing). */
export function missingFiles(dir: string, files: readonly string[]): string[] {
  return files.filter((f) => {
    try {
      return !fs.statSync(path.join(dir, ...f.split('/'))).isFile();
    } catch {
      return true;
    }
  });
}

/** The absolute path of one repo file inside a located model. */
export function modelFile(loc: ModelLocation, file: string): string {
  return path.join(loc.dir, ...file.split('/'));
}

/**
 * The snapshot folder for `revision` in a cached repo: snapshots/<revision> when the revision is a commit hash,
 * else the commit in refs/<revision>; without refs, the only snapshot if there is exactly one.
 */
export function resolveSnapshot(repoDir: string, revision: string): { dir: string; commit: string } | { why: string } {
  if (!isDir(repoDir)) return { why: 'no such folder' };
  const snaps = path.join(repoDir, 'snapshots');
  if (HEX40.test(revision) && isDir(path.join(snaps, revision))) return { dir: path.join(snaps, revision), commit: revision };
  const ref = path.join(repoDir, 'refs', ...revision.split('/'));
  let commit: string | undefined;
  try {
    commit = fs.readFileSync(ref, 'utf8').trim();
  } catch {
    commit = undefined;
  }
  if (commit !== undefined) {
    if (!HEX40.test(commit)) return { why: `refs/${revision} does not hold a commit hash` };
    const dir = path.join(snaps, commit);
    return isDir(dir) ? { dir, commit } : { why: `refs/${revision} names ${commit}, but snapshots/${commit} does not exist` };
  }
  let list: string[] = [];
  try {
    list = fs.readdirSync(snaps).filter((n) => isDir(path.join(snaps, n)));
  } catch {
    list = [];
  }
  if (list.length === 1) return { dir: path.join(snaps, list[0]), commit: list[0] };
  return {
    why:
      list.length === 0
        ? `no refs/${revision} and no snapshots`
        : `no refs/${revision} and ${list.length} snapshots (${list.join(', ')}): cannot tell which`,
  };
}

function describe(loc: ModelLocation): string {
  return loc.complete ? 'complete' : `incomplete, missing: ${loc.missing.join(', ')}`;
}

/** Look for a model in every place, in order; returns the location used (or null) and every place looked at. */
export function searchModel(entry: ModelEntry, opts: LocateOptions = {}): SearchResult {
  const env = opts.env ?? process.env;
  const searched: SearchedPlace[] = [];
  const at = (dir: string, where: ModelWhere, revision?: string): ModelLocation => {
    const missing = missingFiles(dir, entry.files);
    return { dir, where, ...(revision ? { revision } : {}), complete: missing.length === 0, missing };
  };

  if (opts.modelDir && entry.kind === 'generator') {
    const dir = path.resolve(opts.modelDir);
    if (!isDir(dir)) {
      searched.push({ where: 'model-dir', path: dir, result: 'no such folder' });
      return { location: null, searched };
    }
    const loc = at(dir, 'model-dir');
    searched.push({ where: 'model-dir', path: dir, result: describe(loc) });
    return { location: loc, searched };
  }

  const found: ModelLocation[] = [];
  if (opts.modelsDir) {
    const dir = path.resolve(opts.modelsDir, ...entry.repo.split('/'));
    if (isDir(dir)) {
      const loc = at(dir, 'models-dir');
      found.push(loc);
      searched.push({ where: 'models-dir', path: dir, result: describe(loc) });
    } else searched.push({ where: 'models-dir', path: dir, result: 'no such folder' });
  }
  if (!found.some((l) => l.complete)) {
    const repoDir = hfRepoDir(entry.repo, hfCacheDir(env));
    const snap = resolveSnapshot(repoDir, entry.revision);
    if ('dir' in snap) {
      const loc = at(snap.dir, 'hf-cache', snap.commit);
      found.push(loc);
      searched.push({ where: 'hf-cache', path: snap.dir, result: describe(loc) });
    } else searched.push({ where: 'hf-cache', path: repoDir, result: snap.why });
  }
  // The first complete location wins; else the first one that exists, so that its missing files can be named.
  return { location: found.find((l) => l.complete) ?? found[0] ?? null, searched };
}

/** Where a model is on disk, or null when no searched place has it. */
export function locateModel(entry: ModelEntry, opts: LocateOptions = {}): ModelLocation | null {
  return searchModel(entry, opts).location;
}

const LABEL: Record<ModelWhere, string> = { 'model-dir': '--model-dir', 'models-dir': '--models-dir', 'hf-cache': 'HF cache' };

/** How to get a model: the download command, the folders to point reno at, and the offline preset. */
export function howToGet(entry: ModelEntry, opts: LocateOptions = {}): string[] {
  const env = opts.env ?? process.env;
  const files = entry.files.length === 1 ? entry.files[0] : `{${entry.files.join(', ')}}`;
  const lines = [
    `reno models download ${entry.name}   (about ${entry.size}, into ${hfCacheDir(env)}; set HF_TOKEN for gated repos, HF_ENDPOINT for a mirror)`,
  ];
  if (entry.manual) lines.push(`by hand: ${entry.manual}`);
  lines.push(`or --models-dir DIR with the files at DIR/${entry.repo}/${files}`);
  if (entry.kind === 'generator')
    lines.push(
      `or --model-dir DIR pointing at a diffusers folder of ${entry.repo} (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/)`,
    );
  lines.push('or --preset tiny for an offline smoke test with random tiny weights');
  return lines;
}

function notFoundMessage(entry: ModelEntry, res: SearchResult, opts: LocateOptions): string {
  const head = res.location
    ? `model "${entry.name}" (${entry.repo}) is incomplete at ${res.location.dir}: missing ${res.location.missing.join(', ')}`
    : `model "${entry.name}" (${entry.repo}, revision ${entry.revision}) not found`;
  const places = res.searched.map((s) => `  ${LABEL[s.where]}: ${s.path} (${s.result})`);
  if (!opts.modelsDir) places.push('  --models-dir: not given');
  const how = howToGet(entry, opts).map((l) => `  ${l}`);
  return [head, 'Searched:', ...places, 'To get it:', ...how].join('\n');
}

/** The model's location; throws ModelNotFoundError naming every searched path and how to get it when absent or incomplete. */
export function requireModel(entry: ModelEntry, opts: LocateOptions = {}): ModelLocation {
  const res = searchModel(entry, opts);
  if (res.location?.complete) return res.location;
  throw new ModelNotFoundError(notFoundMessage(entry, res, opts));
}

export interface ModelWithUses {
  main: ModelLocation;
  /** role -> location of the entry used in that role (e.g. tokenizer). */
  uses: Record<string, ModelLocation>;
}

/** requireModel for the entry and every entry it uses (one error listing all that are missing). */
export function requireModelWithUses(entry: ModelEntry, opts: LocateOptions = {}, reg: Registry = registry()): ModelWithUses {
  const errors: string[] = [];
  const get = (e: ModelEntry): ModelLocation | undefined => {
    try {
      return requireModel(e, opts);
    } catch (err) {
      if (!(err instanceof ModelNotFoundError)) throw err;
      errors.push(err.message);
      return undefined;
    }
  };
  const main = get(entry);
  const uses: Record<string, ModelLocation> = {};
  for (const [role, dep] of Object.entries(entry.uses)) {
    const depEntry = getModel(dep, reg);
    const loc = get(depEntry);
    if (loc) uses[role] = loc;
    else errors[errors.length - 1] = `${entry.name} uses "${dep}" as its ${role}: ${errors[errors.length - 1]}`;
  }
  if (errors.length || !main) throw new ModelNotFoundError(errors.join('\n\n'));
  return { main, uses };
}
