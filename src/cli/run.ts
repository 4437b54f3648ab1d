// Entry point: `node dist/src/cli/run.js ...` (bin/reno.js) or `tsx src/cli/run.ts ...`.
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`reno: internal error: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 70;
  },
);
