// `reno generate`: resolve the config, write run.yaml, load the generator and make the image(s).
import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import YAML from 'yaml';
import { GENERATORS } from '../../generators/index.js';
import { useBackend } from '../backend.js';
import { resolveConfig, type RunConfig } from '../config/run-config.js';
import { ConfigError } from '../errors.js';
import { encodePng } from '../image/png.js';
import { getModel } from '../models/registry.js';
import { seededNoise } from '../optimize/noise.js';
import { RENO_VERSION } from '../paths.js';
import { newRunDir, writeFileAtomic } from '../run/files.js';
import { requireModel } from '../weights/hub.js';
import { modelPlaces, parseSize } from './common.js';

export interface GenerateOptions {
  prompt: string;
  seed?: number;
  size?: string;
  steps?: number;
  config?: string;
  /** dotted overrides, e.g. { weights: { pickscore: 0.1 } } */
  overrides?: Record<string, unknown>;
  modelDir?: string;
  modelsDir?: string;
  preset?: string;
  /** the outputs root (default <cwd>/outputs) */
  out?: string;
  backend?: string;
  quiet?: boolean;
  log?: (line: string) => void;
}

export interface GenerateResult {
  runDir: string;
  config: RunConfig;
}

export async function generateCommand(o: GenerateOptions): Promise<GenerateResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const overrides: Record<string, unknown> = { ...(o.overrides ?? {}), prompt: o.prompt };
  if (o.seed !== undefined) overrides.seed = o.seed;
  if (o.steps !== undefined) overrides.steps = o.steps;
  if (o.size !== undefined) Object.assign(overrides, parseSize(o.size));
  const config = resolveConfig({ file: o.config, overrides });
  if (!config.prompt.trim()) throw new ConfigError('--prompt is empty');
  const spec = GENERATORS[config.generator];
  if (!spec) throw new ConfigError(`unknown generator "${config.generator}" (known: ${Object.keys(GENERATORS).join(', ')})`);
  const places = modelPlaces(o);
  const loc = requireModel(getModel(spec.model), places);
  const backend = await useBackend(o.backend, { quiet: o.quiet });

  const runDir = newRunDir(o.out ?? path.join(process.cwd(), 'outputs'), config.prompt);
  const meta = {
    reno_version: RENO_VERSION,
    backend,
    model: { name: spec.model, dir: loc.dir, where: loc.where, revision: loc.revision ?? null, smoke_test: places.smokeTest },
  };
  // the resolved configuration is written before any compute
  writeFileAtomic(path.join(runDir, 'run.yaml'), YAML.stringify({ ...config, run: meta }));
  if (places.smokeTest && !o.quiet) log('reno: using the tiny smoke-test preset (random weights): the image is noise-like by design');

  const gen = spec.load(loc.dir, { smokeTest: places.smokeTest });
  try {
    const cond = gen.prepare(config.prompt);
    const native = gen.nativeSize();
    const size = { width: config.width ?? native.width, height: config.height ?? native.height };
    const z = seededNoise(gen.latentShape(size), config.seed);
    const image = gen.generate(z, cond);
    const text = {
      prompt: config.prompt,
      seed: String(config.seed),
      weights: JSON.stringify(config.weights),
      rewards: JSON.stringify({}),
      backend,
      'reno-version': RENO_VERSION,
      model: `${spec.model}${places.smokeTest ? ' (tiny smoke-test preset, random weights)' : ''}`,
    };
    const png = await encodePng(image, text);
    writeFileAtomic(path.join(runDir, 'init.png'), png);
    writeFileAtomic(path.join(runDir, 'best.png'), png);
    tf.dispose([z, image]);
    cond.dispose();
  } finally {
    gen.dispose();
  }
  if (!o.quiet) log(`reno: wrote ${path.relative(process.cwd(), runDir) || runDir}`);
  return { runDir, config };
}
