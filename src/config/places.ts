// Where the models are: --model-dir / --models-dir, or a committed preset (--preset tiny).
import * as path from 'node:path';
import { UsageError } from '../errors.js';
import { packageRoot } from '../paths.js';

export const PRESETS = ['tiny'] as const;

export interface ModelPlaces {
  modelDir?: string;
  /** the generator's weights as one single-file checkpoint (original SD layout): a path, or a registry entry's name */
  modelFile?: string;
  modelsDir?: string;
  /** true when the weights are the committed random smoke-test preset */
  smokeTest: boolean;
}

/** --preset tiny means "--models-dir <reno>/presets/tiny" and marks the run as a smoke test. */
export function modelPlaces(o: { modelDir?: string; modelsDir?: string; preset?: string; modelFile?: string }): ModelPlaces {
  const modelFile = o.modelFile === undefined ? {} : { modelFile: o.modelFile };
  if (o.preset !== undefined) {
    if (!(PRESETS as readonly string[]).includes(o.preset)) throw new UsageError(`unknown preset "${o.preset}" (known: ${PRESETS.join(', ')})`);
    if (o.modelsDir) throw new UsageError('--preset and --models-dir cannot be used together');
    return { modelDir: o.modelDir, modelsDir: path.join(packageRoot(), 'presets', o.preset), smokeTest: true, ...modelFile };
  }
  return { modelDir: o.modelDir, modelsDir: o.modelsDir, smokeTest: false, ...modelFile };
}
