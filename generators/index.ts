// The generator registry: one line per generator. `model` is its entry in configs/models.yaml.
import * as path from 'node:path';
import { componentWeights } from '../src/models/sd-turbo/load.js';
import { SdTurboPipeline } from './sd-turbo/pipeline.js';
import type { Generator } from './types.js';

export interface GeneratorSpec {
  model: string;
  /** load from a diffusers folder; with modelFile, the weights come from that single-file checkpoint (original SD layout) */
  load(dir: string, opts: { smokeTest: boolean; modelFile?: string }): Generator;
  /** the weights file whose sha256 names the model in the images' metadata (A1111's "Model hash") */
  identityFile(dir: string): string;
}

export const GENERATORS: Record<string, GeneratorSpec> = {
  'sd-turbo': {
    model: 'sd-turbo',
    load: (dir, opts) => SdTurboPipeline.load(dir, opts),
    identityFile: (dir) => componentWeights(path.join(dir, 'unet'), 'diffusion_pytorch_model'),
  },
};

export type { Generator } from './types.js';
