// What `reno preference attention` and `reno preference tsne` share: a checkpoint opened on the chosen backend with
// an image cache, both freed afterwards, and the test users to show (the evaluation protocol's users, picked by
// name or count, two per taste group in turn on a synthetic world).
import * as path from 'node:path';
import { loadPreferenceModel } from '../preference/checkpoint.js';
import { ImageCache, type PreferenceDataset } from '../preference/data.js';
import type { PreferenceModel } from '../preference/model.js';
import { evalProtocol, pickUsers, worldGroups, type EvalUser } from '../preference/protocol.js';
import { useBackend } from '../runtime/backend.js';
import { UsageError } from '../errors.js';

/** fn with the checkpoint's model and a pixel cache on the chosen backend; both are disposed when fn ends. */
export async function withCheckpoint<T>(
  o: { model: string; backbone?: string; backend?: string; quiet?: boolean },
  fn: (c: { ckpt: string; model: PreferenceModel; images: ImageCache }) => Promise<T>,
): Promise<T> {
  const ckpt = path.resolve(o.model);
  await useBackend(o.backend, { quiet: o.quiet });
  const model = loadPreferenceModel(ckpt, { backboneDir: o.backbone && path.resolve(o.backbone) });
  const images = new ImageCache(4096, (x) => model.pixels(x));
  try {
    return await fn({ ckpt, model, images });
  } finally {
    images.dispose();
    model.dispose();
  }
}

/** The test users to show: `users` names them or says how many (default n); a bad choice is a usage error. */
export function chooseUsers(
  ds: PreferenceDataset,
  model: PreferenceModel,
  seed: number,
  users: string[] | number | undefined,
  n: number,
): { chosen: EvalUser[]; groups: Map<string, number> | null } {
  const proto = evalProtocol(ds, { maxNRef: model.config.nRef, seed });
  const groups = worldGroups(ds.dir);
  try {
    return {
      chosen: pickUsers(proto.users, typeof users === 'number' ? users : n, { names: Array.isArray(users) ? users : undefined, groups }),
      groups,
    };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
