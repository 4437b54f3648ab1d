// `reno dev parity <fixtures-root>`: the parity runner on one backend; exit code 1 when any check fails.
import { useBackend } from '../runtime/backend.js';
import { runParity, type ParityResult } from '../parity/runner.js';

export interface ParityCommandOptions {
  root: string;
  backend?: string;
  only?: string[];
  write?: (line: string) => void;
}

export async function parityCommand(o: ParityCommandOptions): Promise<{ code: number; result: ParityResult }> {
  const backend = await useBackend(o.backend);
  const result = await runParity(o.root, { backend, only: o.only, write: o.write });
  const code = result.failed.length || result.errors.length || result.checks.length === 0 ? 1 : 0;
  return { code, result };
}
