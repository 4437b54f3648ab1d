// Entry point: `node dist/src/cli/run.js ...` (bin/reno.js) or `tsx src/cli/run.ts ...`.
import * as os from 'node:os';
import { RenoError } from '../errors.js';

// process.exit once stdout and stderr are flushed: wasm's pthread workers would keep the process alive
const exit = (code: number) => {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
};
try {
  // imported here, not statically: an installation problem found while loading (src/runtime/tf.ts) is reported as one line
  const { requestWasmThreads } = await import('../runtime/wasm-threads.js');
  // one wasm thread per core (RENO_WASM_THREADS overrides; 1 turns threads off)
  requestWasmThreads(os.cpus().length);
  const { main } = await import('./main.js');
  const { checkTfjsVersions } = await import('../runtime/tf.js');
  checkTfjsVersions();
  main(process.argv.slice(2)).then(exit, (e) => {
    process.stderr.write(`reno: internal error: ${(e as Error).stack ?? e}\n`);
    exit(70);
  });
} catch (e) {
  if (!(e instanceof RenoError)) throw e;
  process.stderr.write(`reno: ${e.message}\n`);
  exit(e.exitCode);
}
