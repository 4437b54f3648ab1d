// `reno models list | download | verify`: one async function per sub-command (the yargs wiring lives in src/cli/).
import * as fs from 'node:fs';
import { RenoError, UsageError, WeightsError } from '../errors.js';
import { getModel, registry, withUses, type ModelEntry, type ModelKind, type Registry } from '../config/models.js';
import { DownloadError, downloadModel, sha256File, type DownloadOptions, type RepoDownload } from '../weights/download.js';
import { hfCacheDir, missingFiles, modelFile, searchModel, type LocateOptions, type ModelWhere, type SearchedPlace } from '../weights/hub.js';
import { SafetensorsFile } from '../weights/safetensors.js';

export interface ModelsCommonOptions extends LocateOptions {
  /** Where tables and reports go (default process.stdout). */
  out?: NodeJS.WritableStream;
  /** Another registry (tests); default configs/models.yaml. */
  registry?: Registry;
  /** Skip the pinned sha256 checks (the smoke-test preset holds other files under the released names). */
  skipSha256?: boolean;
}

export interface ModelsListOptions extends ModelsCommonOptions {
  /** Print JSON instead of a table. */
  json?: boolean;
}

export interface ModelStatus {
  name: string;
  repo: string;
  kind: ModelKind;
  description: string;
  size: string;
  /** The revision asked for in the registry (branch, tag or commit). */
  revision: string;
  /** Where it was found, or null. */
  where: ModelWhere | null;
  dir: string | null;
  /** The snapshot's commit hash (HF cache only). */
  commit: string | null;
  complete: boolean;
  missing: string[];
  /** role -> entry name of the entries this model uses. */
  uses: Record<string, string>;
  /** Every place looked at. */
  searched: SearchedPlace[];
}

function out(opts: ModelsCommonOptions): NodeJS.WritableStream {
  return opts.out ?? process.stdout;
}

function locateOpts(opts: LocateOptions): LocateOptions {
  return {
    ...(opts.modelDir ? { modelDir: opts.modelDir } : {}),
    ...(opts.modelsDir ? { modelsDir: opts.modelsDir } : {}),
    ...(opts.env ? { env: opts.env } : {}),
  };
}

export function modelStatus(entry: ModelEntry, opts: LocateOptions = {}): ModelStatus {
  const { location, searched } = searchModel(entry, locateOpts(opts));
  return {
    name: entry.name,
    repo: entry.repo,
    kind: entry.kind,
    description: entry.description,
    size: entry.size,
    revision: entry.revision,
    where: location?.where ?? null,
    dir: location?.dir ?? null,
    commit: location?.revision ?? null,
    complete: location?.complete ?? false,
    missing: location ? location.missing : [...entry.files],
    uses: { ...entry.uses },
    searched,
  };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function statusText(s: ModelStatus): string {
  if (!s.where) return 'not found';
  return s.complete ? 'complete' : `missing ${s.missing.join(', ')}`;
}

/** Every registered model: found where, which revision, complete or not. Prints a table (or JSON) and returns the rows. */
export async function modelsList(opts: ModelsListOptions = {}): Promise<ModelStatus[]> {
  const reg = opts.registry ?? registry();
  const rows = [...reg.models.values()].map((e) => modelStatus(e, opts));
  const w = out(opts);
  if (opts.json) {
    w.write(`${JSON.stringify(rows, null, 2)}\n`);
    return rows;
  }
  const head = ['NAME', 'KIND', 'REPO', 'SIZE', 'FOUND', 'REVISION', 'STATUS'];
  const body = rows.map((s) => [
    s.name,
    s.kind,
    s.repo,
    s.size,
    s.where ? `${s.where} ${s.dir}` : '-',
    s.commit ? s.commit.slice(0, 12) : s.where ? '-' : s.revision,
    statusText(s),
  ]);
  w.write(table([head, ...body]));
  const absent = rows.filter((s) => !s.complete).map((s) => s.name);
  const where = `HF cache ${hfCacheDir(opts.env ?? process.env)}${opts.modelsDir ? `, --models-dir ${opts.modelsDir}` : ''}`;
  w.write(
    absent.length ? `\nSearched: ${where}. Get the rest with: reno models download ${absent.join(' ')}\n` : `\nAll models are complete (${where}).\n`,
  );
  return rows;
}

export interface ModelsDownloadOptions extends DownloadOptions {
  out?: NodeJS.WritableStream;
  registry?: Registry;
  /** Also download the entries each model uses (its tokenizer, head, ...); default true. */
  withUses?: boolean;
}

/** The entries named (or "all"), each followed by the entries it uses, each once. */
export function expandNames(names: readonly string[], reg: Registry, uses = true): ModelEntry[] {
  if (names.length === 0) throw new UsageError(`name the models to download (or "all"); known models: ${[...reg.models.keys()].join(', ')}`);
  const roots = names.includes('all') ? [...reg.models.values()] : names.map((n) => getModel(n, reg));
  const seen = new Map<string, ModelEntry>();
  for (const r of roots) for (const e of uses ? withUses(r, reg) : [r]) seen.set(e.name, e);
  return [...seen.values()];
}

/** Download models into the HF cache (resumable, checked); returns one result per repo downloaded. */
export async function modelsDownload(names: string[], opts: ModelsDownloadOptions = {}): Promise<RepoDownload[]> {
  const reg = opts.registry ?? registry();
  const entries = expandNames(names, reg, opts.withUses ?? true);
  const w = out(opts);
  const results: RepoDownload[] = [];
  const failed: string[] = [];
  for (const e of entries) {
    if (!opts.quiet) (opts.stream ?? process.stderr).write(`${e.name}: ${e.repo} (${e.revision}, about ${e.size})\n`);
    try {
      const r = await downloadModel(e, opts);
      results.push(r);
      w.write(
        `${e.name}: ${e.repo} @ ${r.commit.slice(0, 12)} complete in ${r.snapshot}${r.absent.length ? ` (the hub has no ${r.absent.join(', ')})` : ''}\n`,
      );
    } catch (err) {
      if (!(err instanceof RenoError)) throw err;
      failed.push(`${e.name}: ${err.message}${e.manual ? `\n  by hand: ${e.manual}` : ''}`);
      w.write(`${e.name}: FAILED\n`);
    }
  }
  if (failed.length) throw new DownloadError(`${failed.length} of ${entries.length} downloads failed:\n${failed.join('\n')}`);
  return results;
}

export interface VerifyResult {
  name: string;
  ok: boolean;
  where: ModelWhere | null;
  dir: string | null;
  problems: string[];
}

const PK = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

function checkFile(p: string, file: string): string | null {
  try {
    if (fs.statSync(p).size === 0) return `${file}: empty file`;
    if (file.endsWith('.safetensors')) {
      new SafetensorsFile(p).close();
    } else if (/\.(pt|pth|bin|ckpt)$/.test(file)) {
      const head = Buffer.alloc(4);
      const fd = fs.openSync(p, 'r');
      try {
        fs.readSync(fd, head, 0, 4, 0);
      } finally {
        fs.closeSync(fd);
      }
      if (!head.equals(PK)) return `${file}: not a zip archive (torch.save zip format expected; legacy pickles are not read)`;
    } else if (file.endsWith('.json')) {
      JSON.parse(fs.readFileSync(p, 'utf8'));
    }
    return null;
  } catch (e) {
    const msg = (e as Error).message;
    return e instanceof WeightsError ? msg : `${file}: ${msg}`;
  }
}

/**
 * Check models on disk: every required file present, safetensors headers parse, .pt/.pth/.bin are zips, JSON parses,
 * pinned sha256 match. Names empty: every model that is found. Prints one line per model (plus its problems) and
 * returns the results; the caller decides the exit code (any result with ok false is a failure).
 */
/** The files of an entry that no other entry of the same repo lists. */
function ownFiles(e: ModelEntry, reg: Registry): string[] {
  const others = [...reg.models.values()].filter((o) => o !== e && o.repo === e.repo);
  return e.files.filter((f) => !others.some((o) => o.files.includes(f)));
}

export async function modelsVerify(names: string[], opts: ModelsCommonOptions = {}): Promise<VerifyResult[]> {
  const reg = opts.registry ?? registry();
  const w = out(opts);
  const entries = names.length ? expandNames(names, reg, true) : [...reg.models.values()];
  const results: VerifyResult[] = [];
  for (const e of entries) {
    const { location, searched } = searchModel(e, locateOpts(opts));
    if (!location) {
      if (names.length === 0) continue;
      const where = searched.map((s) => `${s.path} (${s.result})`).join('; ');
      results.push({
        name: e.name,
        ok: false,
        where: null,
        dir: null,
        problems: [`not found; searched ${where}; get it with: reno models download ${e.name}`],
      });
      continue;
    }
    // verifying everything: an entry that only shares its repo folder with another entry (sd-turbo-file beside
    // sd-turbo) and has none of its own files there is not downloaded, not broken
    if (names.length === 0 && ownFiles(e, reg).length && ownFiles(e, reg).every((f) => location.missing.includes(f))) continue;
    const problems = location.missing.map((f) => `${f}: missing`);
    const present = [...e.files, ...e.optional].filter((f) => !missingFiles(location.dir, [f]).length);
    for (const f of present) {
      const p = modelFile(location, f);
      const bad = checkFile(p, f);
      if (bad) problems.push(bad);
      else if (e.sha256[f] && !opts.skipSha256) {
        const have = await sha256File(p);
        if (have !== e.sha256[f]) problems.push(`${f}: sha256 ${have}, expected ${e.sha256[f]}`);
      }
    }
    results.push({ name: e.name, ok: problems.length === 0, where: location.where, dir: location.dir, problems });
  }
  for (const r of results) {
    w.write(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.name}${r.dir ? `  (${r.where} ${r.dir})` : ''}\n`);
    for (const p of r.problems) w.write(`      ${p}\n`);
  }
  if (results.length === 0)
    w.write(`no models found (HF cache ${hfCacheDir(opts.env ?? process.env)}${opts.modelsDir ? `, --models-dir ${opts.modelsDir}` : ''})\n`);
  return results;
}
