// Pieces several commands share: where the models are (flags, preset), and the generator by name.
import * as path from 'node:path';
import { UsageError } from '../errors.js';

export { PRESETS, modelPlaces, type ModelPlaces } from '../config/places.js';

/** "512" or "768x512" (width x height). */
export function parseSize(s: string | number): { width: number; height: number } {
  const m = /^(\d+)(?:x(\d+))?$/.exec(String(s).trim());
  if (!m) throw new UsageError(`--size must be N or WxH (e.g. 512 or 768x512), found "${s}"`);
  const width = Number(m[1]);
  return { width, height: m[2] ? Number(m[2]) : width };
}

export { personalOptions } from '../run/personal-options.js';
