// The generator registry: one line per generator. `model` is its entry in configs/models.yaml.
import { SdTurboPipeline } from './sd-turbo/pipeline.js';
import type { Generator } from './types.js';

export interface GeneratorSpec {
  model: string;
  load(dir: string, opts: { smokeTest: boolean }): Generator;
}

export const GENERATORS: Record<string, GeneratorSpec> = {
  'sd-turbo': { model: 'sd-turbo', load: (dir, opts) => SdTurboPipeline.load(dir, opts) },
};

export type { Generator } from './types.js';
