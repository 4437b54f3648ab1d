// What reno writes into every PNG it makes, in the two places image tools look:
// - `parameters`: AUTOMATIC1111's plain-text settings (read by A1111's "PNG Info", civitai, InvokeAI and others):
//   the prompt, an optional "Negative prompt: ..." line, then one line of "Key: value" pairs separated by ", ",
//   a value quoted as a JSON string when it holds a comma, a colon or a newline (A1111's infotext format,
//   modules/infotext_utils.py: quote / parse_generation_parameters).
// - `reno`: reno's full record of the image as one JSON object (format RENO_RECORD_FORMAT), which `reno score` and
//   `reno generate --config-from IMAGE.png` read back.
// No key is named `prompt` (ComfyUI reads that key as its workflow JSON) and no local path is written: the model is
// named by its registry name, repository and sha256 (A1111's "Model hash" is the first 10 hex digits of it).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../config/run-config.js';
import { DataError } from '../errors.js';
import { readPngText } from './png.js';

export const RENO_RECORD_FORMAT = 'reno-image/1';
/** The PNG text keys reno writes. */
export const PARAMETERS_KEY = 'parameters';
export const RENO_KEY = 'reno';

/** The generator's weights, named without a local path. */
export interface ModelIdentity {
  /** the registry name (configs/models.yaml), e.g. sd-turbo */
  name: string;
  /** ORG/NAME on the Hugging Face hub */
  repo: string;
  /** the single checkpoint file's name (--model-file), or the file hashed in a diffusers folder (relative to it) */
  file: string;
  /** sha256 of that file (hex) */
  sha256: string;
  /** the tiny preset's random weights */
  smoke_test: boolean;
}

/** reno's record of one image (the `reno` chunk). */
export interface ImageRecord {
  format: typeof RENO_RECORD_FORMAT;
  reno_version: string;
  /** which image of the run: the unoptimised one, the best, or an intermediate step */
  image: 'init' | 'best' | 'step';
  /** the optimisation step that produced this image (0: the initial noise) */
  step: number;
  best_step: number | null;
  prompt: string;
  seed: number;
  width: number;
  height: number;
  /** the run's configuration (RunConfig, width/height resolved): `--config-from` starts from it */
  config: RunConfig;
  model: ModelIdentity;
  backend: string;
  weight_dtype: 'fp32' | 'fp16';
  /** weight of each active reward */
  weights: Record<string, number>;
  /** each active reward's loss at this step (lower is better) and their weighted total (with the regulariser) */
  losses: Record<string, number>;
  total_loss: number;
  /** each active reward's score at this step (higher is better; src/run/summary.ts scoreFromLoss) */
  scores: Record<string, number>;
  /** the personal reward's settings when it ran (--user) */
  personal: { guidance: 'like' | 'dislike'; n_ref: number; personal_model?: string; personal_tower?: string; personal_formula?: string } | null;
  smoke_test: boolean;
}

/** A1111's short "Model hash": the first 10 hex digits of the checkpoint's sha256. */
export const shortHash = (sha256: string) => sha256.slice(0, 10);

/** sha256 of a file, read in pieces (a multi-GB checkpoint never needs one Buffer). */
export function sha256File(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(16 * 1024 * 1024);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** A1111's quote(): a value with a comma, colon or newline becomes a JSON string. */
export function quoteValue(v: string): string {
  return /[,:\n]/.test(v) ? JSON.stringify(v) : v;
}

const num = (x: number) => String(Number(x.toPrecision(6)));
const pairs = (o: Record<string, number>) =>
  Object.entries(o)
    .map(([k, v]) => `${k} ${num(v)}`)
    .join(', ');

/** The A1111 `parameters` text of an image record. */
export function formatParameters(r: ImageRecord): string {
  const c = r.config;
  const fields: [string, string][] = [
    // SD-Turbo: one Euler step at t = 999 without classifier-free guidance (A1111: CFG scale 1)
    ['Steps', '1'],
    ['Sampler', 'Euler'],
    ['CFG scale', '1'],
    ['Seed', String(r.seed)],
    ['Size', `${r.width}x${r.height}`],
    ['Model hash', shortHash(r.model.sha256)],
    ['Model', r.model.name],
    ['Rewards', pairs(r.weights)],
    ['Reward scores', pairs(r.scores)],
    ['Reward losses', pairs(r.losses)],
    ['Total loss', num(r.total_loss)],
    ...(r.personal
      ? ([
          [
            'Personal',
            `${r.personal.guidance}, n_ref ${r.personal.n_ref}${r.personal.personal_model ? `, ${[r.personal.personal_model, r.personal.personal_tower, r.personal.personal_formula].filter(Boolean).join(' ')}` : ''}`,
          ],
        ] as [string, string][])
      : []),
    ['ReNO steps', String(c.optimize ? c.steps : 1)],
    ['ReNO optimizer', c.optimizer],
    ['ReNO lr', num(c.lr)],
    ['ReNO step', String(r.step)],
    ...(r.best_step !== null ? ([['ReNO best step', String(r.best_step)]] as [string, string][]) : []),
    ...(r.smoke_test ? ([['Smoke test', 'random weights']] as [string, string][]) : []),
    ['Version', `reno ${r.reno_version}`],
  ];
  // the prompt is the text before the settings line; a prompt's own newlines stay (A1111 joins the prompt lines)
  return `${r.prompt}\n${fields.map(([k, v]) => `${k}: ${quoteValue(v)}`).join(', ')}`;
}

/** The PNG text chunks of an image: `parameters` and `reno`. */
export function imageChunks(r: ImageRecord): Record<string, string> {
  return { [PARAMETERS_KEY]: formatParameters(r), [RENO_KEY]: JSON.stringify(r) };
}

/** reno's record from a PNG written by reno; a DataError naming the file otherwise. */
export function readImageRecord(file: string): ImageRecord {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new DataError(`cannot read ${file}: ${(e as Error).message}`);
  }
  let text: Record<string, string>;
  try {
    text = readPngText(buf);
  } catch (e) {
    throw new DataError(`${file}: ${(e as Error).message}`);
  }
  const raw = text[RENO_KEY];
  if (raw === undefined)
    throw new DataError(`${file} has no "${RENO_KEY}" text chunk: it was not written by reno (or by a reno before ${RENO_RECORD_FORMAT})`);
  let rec: unknown;
  try {
    rec = JSON.parse(raw);
  } catch (e) {
    throw new DataError(`${file}: the "${RENO_KEY}" chunk is not valid JSON (${(e as Error).message})`);
  }
  const r = rec as Partial<ImageRecord>;
  if (!r || typeof r !== 'object' || r.format !== RENO_RECORD_FORMAT)
    throw new DataError(`${file}: the "${RENO_KEY}" chunk has format ${JSON.stringify(r?.format)}, expected "${RENO_RECORD_FORMAT}"`);
  for (const k of ['config', 'model', 'prompt', 'seed'] as const)
    if (r[k] === undefined || r[k] === null) throw new DataError(`${file}: the "${RENO_KEY}" chunk has no "${k}"`);
  return r as ImageRecord;
}

/** The name of `file` relative to `dir` when inside it, else its base name: never an absolute path. */
export function localName(dir: string, file: string): string {
  const rel = path.relative(dir, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : path.basename(file);
}
