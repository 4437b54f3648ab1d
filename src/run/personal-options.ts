// The personal reward's options as commands, sweeps and queue workers build them from a user's history file.
import * as path from 'node:path';
import type { RewardLoadContext } from '../../rewards/types.js';

/** The personal reward's options from --user (resolved), guidance, N_ref, --preference-model and the mode; none without --user. */
export function personalOptions(
  user: string | undefined,
  guidance: 'like' | 'dislike',
  nRef: number,
  preferenceModel?: string,
  more: { mode?: 'auto' | 'vlm' | 'embedding'; tower?: string; formula?: string; log?: (line: string) => void } = {},
): RewardLoadContext['personal'] {
  return user
    ? { historyFile: path.resolve(user), guidance, nRef, checkpoint: preferenceModel && path.resolve(preferenceModel), ...more }
    : undefined;
}
