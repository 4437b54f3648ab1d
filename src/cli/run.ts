// Entry point: `node dist/src/cli/run.js ...` (bin/reno.js) or `tsx src/cli/run.ts ...`.
import * as os from 'node:os';
import { requestWasmThreads } from '../wasm-threads.js';
import { main } from './main.js';

// one wasm thread per core (RENO_WASM_THREADS overrides; 1 turns threads off)
requestWasmThreads(os.cpus().length);

// process.exit once stdout and stderr are flushed: wasm's pthread workers would keep the process alive
const exit = (code: number) => {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
};
main(process.argv.slice(2)).then(exit, (e) => {
  process.stderr.write(`reno: internal error: ${(e as Error).stack ?? e}\n`);
  exit(70);
});
