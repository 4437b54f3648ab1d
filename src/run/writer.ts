// A run folder (README, "A run folder"): run.yaml first, metrics.jsonl one line per step, optional steps/NNN.png, then init.png,
// best.png (PNG text chunks: A1111's `parameters` and reno's `reno` record, src/image/a1111.ts) and report.html. Every file is written under a temporary name and renamed, so an interrupted run leaves a
// valid folder.
import type * as tf from '../runtime/tf.js';
import * as path from 'node:path';
import YAML from 'yaml';
import type { RunConfig } from '../config/run-config.js';
import { imageChunks, RENO_RECORD_FORMAT, type ImageRecord, type ModelIdentity } from '../image/a1111.js';
import { encodePng } from '../image/png.js';
import type { LoopResult, StepRecord } from '../optimize/loop.js';
import { runReport } from '../report/html.js';
import { appendLine, writeFileAtomic } from '../util/files.js';

export interface RunMeta {
  prompt: string;
  seed: number;
  weights: Record<string, number>;
  backend: string;
  renoVersion: string;
  /** the generator's weights by name and hash (never a local path: the PNGs are shared) */
  model: ModelIdentity;
  /** the run's configuration, width/height resolved */
  config: RunConfig;
  weightDtype: 'fp32' | 'fp16';
  /** the personal reward's settings when it runs */
  personal: ImageRecord['personal'];
  /** the tiny preset's random weights: the PNGs say so */
  smokeTest?: boolean;
}

export class RunWriter {
  constructor(
    readonly dir: string,
    readonly meta: RunMeta,
  ) {}

  file(name: string): string {
    return path.join(this.dir, name);
  }

  writeConfig(config: unknown): void {
    writeFileAtomic(this.file('run.yaml'), YAML.stringify(config));
  }

  appendMetrics(rec: StepRecord): void {
    appendLine(this.file('metrics.jsonl'), JSON.stringify(rec));
  }

  /** reno's record of the image of step `rec` (the PNG's `reno` chunk). */
  record(image: ImageRecord['image'], rec: StepRecord, bestStep: number | null): ImageRecord {
    const m = this.meta;
    return {
      format: RENO_RECORD_FORMAT,
      reno_version: m.renoVersion,
      image,
      step: rec.step,
      best_step: bestStep,
      prompt: m.prompt,
      seed: m.seed,
      width: m.config.width!,
      height: m.config.height!,
      config: m.config,
      model: m.model,
      backend: m.backend,
      weight_dtype: m.weightDtype,
      weights: m.weights,
      losses: rec.rewards,
      total_loss: rec.total,
      scores: rec.scores,
      personal: m.personal,
      smoke_test: !!m.smokeTest,
    };
  }

  async writeImage(name: string, image: tf.Tensor, record: ImageRecord): Promise<void> {
    writeFileAtomic(this.file(name), await encodePng(image, imageChunks(record)));
  }

  async writeStep(rec: StepRecord, image: tf.Tensor): Promise<void> {
    await this.writeImage(path.join('steps', `${String(rec.step).padStart(3, '0')}.png`), image, this.record('step', rec, null));
  }

  /** init.png, best.png and report.html from a (possibly stopped) loop result. */
  async finish(res: LoopResult, config: unknown, notes: string[]): Promise<void> {
    const bestStep = res.best?.record.step ?? null;
    if (res.init) await this.writeImage('init.png', res.init.image, this.record('init', res.init.record, bestStep));
    if (res.best) await this.writeImage('best.png', res.best.image, this.record('best', res.best.record, bestStep));
    const images = [];
    if (res.init) images.push({ src: 'init.png', caption: `initial (step 0), loss ${res.init.record.total.toFixed(4)}` });
    if (res.best) images.push({ src: 'best.png', caption: `best (step ${res.best.record.step}), loss ${res.best.record.total.toFixed(4)}` });
    const html = await runReport({
      title: 'reno run',
      prompt: this.meta.prompt,
      images,
      records: res.records,
      weights: this.meta.weights,
      config,
      notes,
    });
    writeFileAtomic(this.file('report.html'), html);
  }
}
