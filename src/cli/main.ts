// yargs wiring only: each command maps its flags onto an async function in src/commands/ and returns an exit code.
// One error handler: RenoError -> "reno: message" and its exit code; anything else is a bug and prints its stack.
import yargs, { type Argv } from 'yargs';
import { BACKENDS } from '../backend.js';
import { generateCommand } from '../commands/generate.js';
import { modelsDownload, modelsList, modelsVerify } from '../commands/models.js';
import { parityCommand } from '../commands/parity.js';
import { RenoError } from '../errors.js';
import { RENO_VERSION } from '../paths.js';

const modelFlags = (y: Argv) =>
  y
    .option('model-dir', { type: 'string', describe: "the generator's folder in the diffusers layout" })
    .option('models-dir', { type: 'string', describe: 'a folder searched as DIR/ORG/NAME for every model' })
    .option('preset', { type: 'string', choices: ['tiny'], describe: 'use the committed tiny random models (smoke test)' });

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const cli = yargs(argv)
    .scriptName('reno')
    .version(RENO_VERSION)
    .strict()
    .option('backend', { type: 'string', choices: [...BACKENDS], describe: 'tfjs backend (default: auto, or $RENO_BACKEND)' })
    .option('quiet', { type: 'boolean', default: false, describe: 'no progress output' })
    .command(
      'generate',
      'generate an image (optimising the noise against the rewards)',
      (y) =>
        modelFlags(y)
          .option('prompt', { type: 'string', demandOption: true })
          .option('seed', { type: 'number' })
          .option('size', { type: 'string', describe: 'N or WxH in pixels (default 512)' })
          .option('steps', { type: 'number' })
          .option('config', { type: 'string', describe: 'YAML file layered over configs/default.yaml' })
          .option('out', { type: 'string', describe: 'outputs folder (default ./outputs)' })
          .strict(false),
      async (a) => {
        const known = new Set(['_', '$0', 'prompt', 'seed', 'size', 'steps', 'config', 'out', 'backend', 'quiet', 'preset', 'model-dir', 'modelDir', 'models-dir', 'modelsDir']);
        const overrides = Object.fromEntries(Object.entries(a).filter(([k]) => !known.has(k) && !k.includes('-')));
        await generateCommand({
          prompt: a.prompt,
          seed: a.seed,
          size: a.size,
          steps: a.steps,
          config: a.config,
          overrides,
          modelDir: a.modelDir,
          modelsDir: a.modelsDir,
          preset: a.preset,
          out: a.out,
          backend: a.backend,
          quiet: a.quiet,
        });
      },
    )
    .command('models', 'find, download and verify model weights', (y) =>
      modelFlags(y)
        .command('list', 'each registered model: where it was found, revision, complete or not', (yy) => yy.option('json', { type: 'boolean' }), async (a) => {
          await modelsList({ modelDir: a.modelDir, modelsDir: a.modelsDir, json: a.json });
        })
        .command('download <names..>', 'download models into the Hugging Face cache', (yy) => yy.positional('names', { type: 'string', array: true }), async (a) => {
          await modelsDownload(a.names as string[], { quiet: a.quiet });
        })
        .command('verify [names..]', 'check that every required file is present and readable', (yy) => yy.positional('names', { type: 'string', array: true }), async (a) => {
          const bad = await modelsVerify((a.names as string[] | undefined) ?? [], { modelDir: a.modelDir, modelsDir: a.modelsDir });
          if (bad) code = 1;
        })
        .demandCommand(1),
    )
    .command('dev', 'developer tools', (y) =>
      y
        .command(
          'parity <root>',
          'run every parity case found under a fixtures root',
          (yy) => yy.positional('root', { type: 'string', demandOption: true }).option('only', { type: 'string', array: true }),
          async (a) => {
            code = (await parityCommand({ root: a.root, backend: a.backend, only: a.only as string[] | undefined })).code;
          },
        )
        .demandCommand(1),
    )
    .demandCommand(1)
    .fail((msg, err, y) => {
      if (err) throw err;
      process.stderr.write(`${y.help() ? '' : ''}reno: ${msg}\n`);
      code = 2;
    });
  try {
    await cli.parseAsync();
  } catch (e) {
    if (e instanceof RenoError) {
      process.stderr.write(`reno: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
  return code;
}
