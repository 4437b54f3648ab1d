// Pieces several commands share: where the models are (flags, preset), and the generator by name.
import * as path from 'node:path';
import type { RewardLoadContext } from '../../rewards/types.js';
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

/** "512" or "768x512" (width x height). */
export function parseSize(s: string | number): { width: number; height: number } {
  const m = /^(\d+)(?:x(\d+))?$/.exec(String(s).trim());
  if (!m) throw new UsageError(`--size must be N or WxH (e.g. 512 or 768x512), found "${s}"`);
  const width = Number(m[1]);
  return { width, height: m[2] ? Number(m[2]) : width };
}

/** The personal reward's options from --user (resolved), guidance, N_ref, --preference-model and the mode; none without --user. */
export function personalOptions(
  user: string | undefined,
  guidance: 'like' | 'dislike',
  nRef: number,
  preferenceModel?: string,
  more: { mode?: 'auto' | 'vlm' | 'embedding'; tower?: string; formula?: string; log?: (line: string) => void } = {},
): RewardLoadContext['personal'] {
  return user ? { historyFile: path.resolve(user), guidance, nRef, checkpoint: preferenceModel && path.resolve(preferenceModel), ...more } : undefined;
}
