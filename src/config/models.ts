// The model registry (configs/models.yaml): which repo and files each named model needs. The YAML schema is
// described at the top of that file; every validation error names the file, the entry and the key.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { packageRoot } from '../paths.js';
import { ConfigError, UsageError } from '../errors.js';

export const MODEL_KINDS = ['generator', 'reward', 'preference', 'component'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

export interface ModelEntry {
  name: string;
  /** ORG/NAME on the hub; also DIR/ORG/NAME under --models-dir. */
  repo: string;
  /** Branch, tag or commit hash (default "main"). */
  revision: string;
  kind: ModelKind;
  description: string;
  /** Approximate download size, for humans ("3.9 GB"). */
  size: string;
  /** Required files, paths inside the repo (forward slashes). */
  files: string[];
  /** Files used when present; downloaded when the hub has them. */
  optional: string[];
  /** role -> registry entry name: files taken from another entry (another repo), e.g. {tokenizer: 'clip-h-tokenizer'}. */
  uses: Record<string, string>;
  /** file -> pinned sha256 (64 lower-case hex). */
  sha256: Record<string, string>;
  /** How to get the files by hand, when the hub is not the primary source. */
  manual?: string;
  notes?: string;
}

export interface Registry {
  /** The YAML file it was read from. */
  file: string;
  models: Map<string, ModelEntry>;
}

const ENTRY_KEYS = new Set(['repo', 'revision', 'kind', 'description', 'size', 'files', 'optional', 'uses', 'sha256', 'manual', 'notes']);
const REPO_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;

export function defaultRegistryPath(): string {
  return path.join(packageRoot(), 'configs', 'models.yaml');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function checkRelPath(src: string, key: string, p: string): string {
  if (p === '' || p.startsWith('/') || p.includes('\\') || p.split('/').some((s) => s === '' || s === '.' || s === '..'))
    throw new ConfigError(`${src}: "${key}" has a bad file path ${JSON.stringify(p)} (relative, forward slashes, no "..")`);
  return p;
}

function parseEntry(file: string, name: string, raw: unknown): ModelEntry {
  const src = `${file}: model "${name}"`;
  if (!NAME_RE.test(name)) throw new ConfigError(`${file}: bad model name ${JSON.stringify(name)} (lower case, digits, . _ -)`);
  if (!isObject(raw)) throw new ConfigError(`${src} must be a mapping`);
  for (const k of Object.keys(raw))
    if (!ENTRY_KEYS.has(k)) throw new ConfigError(`${src}: unknown key "${k}" (known: ${[...ENTRY_KEYS].join(', ')})`);
  const str = (key: string, dflt?: string): string => {
    const v = raw[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw new ConfigError(`${src}: missing "${key}"`);
      return dflt;
    }
    if (typeof v !== 'string' || v.trim() === '') throw new ConfigError(`${src}: "${key}" must be a non-empty string, found ${JSON.stringify(v)}`);
    return v.trim();
  };
  const list = (key: string, required: boolean): string[] => {
    const v = raw[key];
    if (v === undefined || v === null) {
      if (required) throw new ConfigError(`${src}: missing "${key}"`);
      return [];
    }
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ConfigError(`${src}: "${key}" must be a list of strings`);
    if (required && v.length === 0) throw new ConfigError(`${src}: "${key}" must not be empty`);
    if (new Set(v).size !== v.length) throw new ConfigError(`${src}: "${key}" lists a file twice`);
    return v.map((p) => checkRelPath(src, key, p));
  };
  const map = (key: string): Record<string, string> => {
    const v = raw[key];
    if (v === undefined || v === null) return {};
    if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) throw new ConfigError(`${src}: "${key}" must be a mapping of strings`);
    return { ...(v as Record<string, string>) };
  };
  const repo = str('repo');
  if (!REPO_RE.test(repo)) throw new ConfigError(`${src}: "repo" must be ORG/NAME, found ${JSON.stringify(repo)}`);
  const kind = str('kind');
  if (!(MODEL_KINDS as readonly string[]).includes(kind))
    throw new ConfigError(`${src}: "kind" must be one of ${MODEL_KINDS.join(', ')}, found ${JSON.stringify(kind)}`);
  const files = list('files', true);
  const optional = list('optional', false);
  for (const f of optional) if (files.includes(f)) throw new ConfigError(`${src}: "${f}" is in both "files" and "optional"`);
  const sha256 = map('sha256');
  for (const [f, h] of Object.entries(sha256)) {
    if (!files.includes(f) && !optional.includes(f)) throw new ConfigError(`${src}: "sha256" names ${f}, which is not in "files" or "optional"`);
    if (!/^[0-9a-f]{64}$/.test(h)) throw new ConfigError(`${src}: "sha256" of ${f} must be 64 lower-case hex digits`);
  }
  const entry: ModelEntry = {
    name,
    repo,
    revision: str('revision', 'main'),
    kind: kind as ModelKind,
    description: str('description'),
    size: str('size'),
    files,
    optional,
    uses: map('uses'),
    sha256,
  };
  if (raw.manual !== undefined) entry.manual = str('manual');
  if (raw.notes !== undefined) entry.notes = str('notes');
  return entry;
}

/** Parse registry YAML text; `file` names the source in errors. */
export function parseRegistry(text: string, file: string): Registry {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid YAML (${(e as Error).message})`);
  }
  if (!isObject(doc)) throw new ConfigError(`${file}: must be a mapping with a "models" key`);
  for (const k of Object.keys(doc)) if (k !== 'models') throw new ConfigError(`${file}: unknown top-level key "${k}" (only "models")`);
  if (!isObject(doc.models)) throw new ConfigError(`${file}: "models" must be a mapping of model name to entry`);
  const models = new Map<string, ModelEntry>();
  for (const [name, raw] of Object.entries(doc.models)) models.set(name, parseEntry(file, name, raw));
  for (const m of models.values())
    for (const [role, dep] of Object.entries(m.uses)) {
      if (!models.has(dep)) throw new ConfigError(`${file}: model "${m.name}": "uses.${role}" names unknown model "${dep}"`);
      if (dep === m.name) throw new ConfigError(`${file}: model "${m.name}": "uses.${role}" names the model itself`);
    }
  return { file, models };
}

export function loadRegistry(file = defaultRegistryPath()): Registry {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read the model registry ${file}: ${(e as Error).message}`);
  }
  return parseRegistry(text, file);
}

let cached: Registry | undefined;

/** The package registry, read once. */
export function registry(): Registry {
  cached ??= loadRegistry();
  return cached;
}

export function modelNames(reg: Registry = registry()): string[] {
  return [...reg.models.keys()];
}

/** The entry named `name`; an unknown name is a usage error that lists the known names. */
export function getModel(name: string, reg: Registry = registry()): ModelEntry {
  const m = reg.models.get(name);
  if (!m) throw new UsageError(`unknown model "${name}"; known models: ${modelNames(reg).join(', ')} (from ${reg.file})`);
  return m;
}

/** The entry and, depth first, every entry it uses (each once), the entry itself first. */
export function withUses(entry: ModelEntry, reg: Registry = registry()): ModelEntry[] {
  const out: ModelEntry[] = [];
  const seen = new Set<string>();
  const visit = (e: ModelEntry) => {
    if (seen.has(e.name)) return;
    seen.add(e.name);
    out.push(e);
    for (const dep of Object.values(e.uses)) visit(getModel(dep, reg));
  };
  visit(entry);
  return out;
}
