// The pairs `reno ui` offers to rate: two images of one prompt, made on demand (two one-shot generations through the
// job queue), drawn from a finished run's initial and best images, or from a folder of images. Pairs shown and never
// answered are forgotten after 100.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateCommand, type GenerateOptions } from '../commands/generate.js';
import { RenoError } from '../errors.js';
import { HttpError } from './http.js';
import type { Job, JobQueue } from './jobs.js';
import { listRuns } from './runs.js';

export interface Pair {
  id: string;
  prompt: string;
  left: string;
  right: string;
}

const IMAGE_EXT = /\.(png|jpe?g|webp)$/i;

export interface PairSources {
  /** the outputs root: finished runs to take a pair from */
  outputs: string;
  /** a folder of images, when given */
  images?: string;
  /** where the generated pairs' one-shot runs go */
  scratch: string;
  models: Pick<GenerateOptions, 'preset' | 'modelDir' | 'modelsDir' | 'backend'>;
  rewardNames: string[];
  queue: JobQueue;
}

/** The pairs on offer (by id), making a new one from a request body, and a pair as the page sees it. */
export function pairMaker(c: PairSources) {
  const { outputs, scratch, models, rewardNames, queue } = c;
  const pairs = new Map<string, Pair>();

  async function generatedPair(prompt: string, job: Job): Promise<Pair> {
    const seed = crypto.randomInt(0, 2 ** 31 - 1);
    const zero = Object.fromEntries(rewardNames.map((n) => [n, 0]));
    const images: string[] = [];
    for (const s of [seed, seed + 1]) {
      if (job.stopRequested) throw new RenoError('stopped before the pair was ready');
      // a one-shot image (no reward loaded): the fastest image the current backend makes
      const r = await generateCommand({
        prompt,
        seed: s,
        noOptimize: true,
        overrides: { weights: zero },
        ...models,
        out: path.join(scratch, 'runs'),
        quiet: true,
        log: () => {},
        stdout: () => {},
      });
      images.push(path.join(r.dir, 'best.png'));
    }
    return { id: crypto.randomBytes(6).toString('hex'), prompt, left: images[0], right: images[1] };
  }

  function pairFromRuns(): Pair {
    const runs = listRuns(outputs).filter((r) => r.kind === 'run' && r.images.length === 2);
    if (!runs.length) throw new HttpError(409, `no finished run under ${outputs} to take a pair from: generate one first, or choose "generate"`);
    const r = runs[crypto.randomInt(runs.length)];
    const [a, b] = crypto.randomInt(2) ? [r.images[0], r.images[1]] : [r.images[1], r.images[0]];
    return { id: crypto.randomBytes(6).toString('hex'), prompt: r.prompt, left: path.join(outputs, a), right: path.join(outputs, b) };
  }

  function pairFromImages(prompt: string): Pair {
    const dir = path.resolve(c.images!);
    let files: string[] = [];
    try {
      files = fs
        .readdirSync(dir)
        .filter((f) => IMAGE_EXT.test(f))
        .sort();
    } catch (e) {
      throw new HttpError(409, `cannot read the image folder ${dir}: ${(e as Error).message}`);
    }
    if (files.length < 2) throw new HttpError(409, `the image folder ${dir} holds ${files.length} image(s): a pair needs two`);
    const i = crypto.randomInt(files.length);
    let j = crypto.randomInt(files.length - 1);
    if (j >= i) j++;
    return { id: crypto.randomBytes(6).toString('hex'), prompt, left: path.join(dir, files[i]), right: path.join(dir, files[j]) };
  }

  async function newPair(body: Record<string, unknown>): Promise<Pair> {
    const source = String(body.source ?? 'generate');
    const prompt = typeof body.prompt === 'string' ? body.prompt.trim() : '';
    let pair: Pair;
    if (source === 'runs') pair = pairFromRuns();
    else {
      if (!prompt) throw new HttpError(400, 'the prompt is empty: type what the two images should show');
      if (source === 'images') {
        if (!c.images) throw new HttpError(400, 'no image folder: start reno ui with --images DIR');
        pair = pairFromImages(prompt);
      } else if (source === 'generate') {
        const { ended } = queue.add('pair', prompt, (job) => generatedPair(prompt, job));
        const job = await ended;
        if (job.state !== 'done') throw new HttpError(job.state === 'failed' ? 500 : 409, job.error ?? `the pair was ${job.state}`);
        pair = job.result as Pair;
      } else throw new HttpError(400, `unknown source "${source}" (known: generate, runs${c.images ? ', images' : ''})`);
    }
    pairs.set(pair.id, pair);
    if (pairs.size > 100) pairs.delete(pairs.keys().next().value!); // pairs shown and never answered
    return pair;
  }

  const pairView = (p: Pair) => ({ id: p.id, prompt: p.prompt, left: `pairs/${p.id}/left`, right: `pairs/${p.id}/right` });

  return { pairs, newPair, pairView };
}
