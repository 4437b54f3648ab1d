// A run folder (README, "A run folder"): run.yaml first, metrics.jsonl one line per step, optional steps/NNN.png, then init.png,
// best.png (PNG text chunks: prompt, seed, weights, rewards, backend, reno version, model, smoke_test with the tiny
// preset) and report.html. Every file is written under a temporary name and renamed, so an interrupted run leaves a
// valid folder.
import type * as tf from '../runtime/tf.js';
import * as path from 'node:path';
import YAML from 'yaml';
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
  model: string;
  /** the tiny preset's random weights: the PNGs say so (smoke_test: true) */
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

  pngText(rewards: Record<string, number>, extra: Record<string, string> = {}): Record<string, string> {
    const m = this.meta;
    return {
      prompt: m.prompt,
      seed: String(m.seed),
      weights: JSON.stringify(m.weights),
      rewards: JSON.stringify(rewards),
      backend: m.backend,
      'reno-version': m.renoVersion,
      model: m.model,
      ...(m.smokeTest ? { smoke_test: 'true' } : {}),
      ...extra,
    };
  }

  async writeImage(name: string, image: tf.Tensor, rewards: Record<string, number>, extra: Record<string, string> = {}): Promise<void> {
    writeFileAtomic(this.file(name), await encodePng(image, this.pngText(rewards, extra)));
  }

  async writeStep(rec: StepRecord, image: tf.Tensor): Promise<void> {
    await this.writeImage(path.join('steps', `${String(rec.step).padStart(3, '0')}.png`), image, rec.rewards, { step: String(rec.step) });
  }

  /** init.png, best.png and report.html from a (possibly stopped) loop result. */
  async finish(res: LoopResult, config: unknown, notes: string[]): Promise<void> {
    if (res.init) await this.writeImage('init.png', res.init.image, res.init.record.rewards, { step: '0' });
    if (res.best) await this.writeImage('best.png', res.best.image, res.best.record.rewards, { step: String(res.best.record.step), total: String(res.best.record.total) });
    const images = [];
    if (res.init) images.push({ src: 'init.png', caption: `initial (step 0), loss ${res.init.record.total.toFixed(4)}` });
    if (res.best) images.push({ src: 'best.png', caption: `best (step ${res.best.record.step}), loss ${res.best.record.total.toFixed(4)}` });
    const html = runReport({ title: 'reno run', prompt: this.meta.prompt, images, records: res.records, weights: this.meta.weights, config, notes });
    writeFileAtomic(this.file('report.html'), html);
  }
}
