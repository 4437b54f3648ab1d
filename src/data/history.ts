// A user's preference history (history.json, README "history.json"): who the user is and the pairs of images they
// liked and disliked, each with the prompt that produced them. The personal reward reads the last N_ref pairs.
//
//   { "user": "alice",
//     "model": "prefs/alice-ckpt",            (optional: the preference checkpoint to score with)
//     "pairs": [ { "prompt": "a castle at dusk", "liked": "img/a.png", "disliked": "img/b.png" } ] }
//
// Paths (images and "model") are relative to the JSON file; absolute paths and file: URLs are allowed. "prompt" may
// be empty or absent. Every error names the file, the pair index and the field; an image that is missing or not a
// readable file is named with its resolved path (its pixels are decoded later, by whoever uses them, and a decode
// error names the pair and field too: see historyImageWhere).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError } from '../errors.js';

export interface HistoryPair {
  /** Position in the file's "pairs" array (0-based), for messages. */
  index: number;
  prompt: string;
  /** Absolute paths. */
  liked: string;
  disliked: string;
}

export interface History {
  /** The history.json file (absolute). */
  file: string;
  user: string;
  /** Absolute path of the preference checkpoint named by "model", if any. */
  model: string | null;
  pairs: HistoryPair[];
}

const TOP_KEYS = ['user', 'model', 'pairs'];
const PAIR_KEYS = ['prompt', 'liked', 'disliked'];

/** Resolve a path of the history file: relative to `baseDir`, absolute, or a file: URL. */
export function resolveHistoryPath(p: string, baseDir: string): string {
  if (/^file:/i.test(p)) {
    try {
      return fileURLToPath(p);
    } catch (e) {
      throw new DataError(`bad file URL ${JSON.stringify(p)}: ${(e as Error).message}`);
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) throw new DataError(`only local files are supported, found the URL ${JSON.stringify(p)}`);
  return path.isAbsolute(p) ? p : path.resolve(baseDir, p);
}

/** "history.json: pairs[3].liked" */
export function historyImageWhere(h: Pick<History, 'file'>, pair: Pick<HistoryPair, 'index'>, field: 'liked' | 'disliked'): string {
  return `${h.file}: pairs[${pair.index}].${field}`;
}

function checkReadableFile(file: string, where: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new DataError(`${where}: image not found: ${file}`);
  }
  if (!st.isFile()) throw new DataError(`${where}: not a file: ${file}`);
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch {
    throw new DataError(`${where}: image is not readable: ${file}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Validate a parsed history object. `file` names it in errors and anchors its relative paths. */
export function parseHistory(json: unknown, file: string, opts: { checkFiles?: boolean } = {}): History {
  const checkFiles = opts.checkFiles ?? true;
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  if (!isObject(json)) throw new DataError(`${abs}: a history must be a JSON object with "pairs"`);
  for (const k of Object.keys(json)) if (!TOP_KEYS.includes(k)) throw new DataError(`${abs}: unknown key "${k}" (known: ${TOP_KEYS.join(', ')})`);
  const user = json.user ?? path.basename(abs, path.extname(abs));
  if (typeof user !== 'string' || !user.trim()) throw new DataError(`${abs}: "user" must be a non-empty string, found ${JSON.stringify(json.user)}`);
  let model: string | null = null;
  if (json.model !== undefined && json.model !== null) {
    if (typeof json.model !== 'string' || !json.model.trim())
      throw new DataError(`${abs}: "model" must be a path, found ${JSON.stringify(json.model)}`);
    model = resolveHistoryPath(json.model, dir);
    if (checkFiles && !fs.existsSync(model)) throw new DataError(`${abs}: "model": preference checkpoint not found: ${model}`);
  }
  if (!Array.isArray(json.pairs))
    throw new DataError(`${abs}: "pairs" must be a list of {prompt, liked, disliked}, found ${JSON.stringify(json.pairs)}`);
  if (json.pairs.length === 0) throw new DataError(`${abs}: "pairs" is empty: the personal reward needs at least one liked/disliked pair`);
  const pairs = json.pairs.map((raw, index): HistoryPair => {
    const where = `${abs}: pairs[${index}]`;
    if (!isObject(raw)) throw new DataError(`${where} must be an object {prompt, liked, disliked}, found ${JSON.stringify(raw)}`);
    for (const k of Object.keys(raw))
      if (!PAIR_KEYS.includes(k)) throw new DataError(`${where}: unknown field "${k}" (known: ${PAIR_KEYS.join(', ')})`);
    const prompt = raw.prompt ?? '';
    if (typeof prompt !== 'string') throw new DataError(`${where}.prompt must be a string (it may be empty), found ${JSON.stringify(raw.prompt)}`);
    const image = (field: 'liked' | 'disliked'): string => {
      const v = raw[field];
      if (v === undefined || v === null) throw new DataError(`${where}.${field} is missing (a path to an image)`);
      if (typeof v !== 'string' || !v.trim()) throw new DataError(`${where}.${field} must be a path to an image, found ${JSON.stringify(v)}`);
      let p: string;
      try {
        p = resolveHistoryPath(v, dir);
      } catch (e) {
        throw new DataError(`${where}.${field}: ${(e as Error).message}`);
      }
      if (checkFiles) checkReadableFile(p, `${where}.${field}`);
      return p;
    };
    return { index, prompt, liked: image('liked'), disliked: image('disliked') };
  });
  return { file: abs, user: user.trim(), model, pairs };
}

/** Read and validate history.json (images must exist and be readable files). */
export function readHistory(file: string, opts: { checkFiles?: boolean } = {}): History {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(code === 'ENOENT' ? `history not found: ${abs}` : `cannot read history ${abs}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DataError(`${abs}: not valid JSON (${(e as Error).message})`);
  }
  return parseHistory(json, abs, opts);
}

/** The last `n` pairs (all of them when there are fewer), oldest first: the references the model reads. */
export function lastPairs(h: History, n: number): HistoryPair[] {
  if (!(Number.isInteger(n) && n >= 1)) throw new DataError(`n_ref must be a positive integer, found ${n}`);
  return h.pairs.slice(Math.max(0, h.pairs.length - n));
}
