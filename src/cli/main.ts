// yargs wiring only: each command maps its flags onto an async function in src/commands/ and returns an exit code.
// One error handler: RenoError -> "reno: message" and its exit code; anything else is a bug and prints its stack.
import yargs, { type Argv } from 'yargs';
import { BACKENDS } from '../runtime/backend.js';
import { installSettings, readSettings } from '../runtime/settings.js';
import { compareCommand } from '../commands/compare.js';
import { modelPlaces } from '../commands/common.js';
import { generateCommand } from '../commands/generate.js';
import { sweepCommand } from '../commands/sweep.js';
import { workerCommand } from '../commands/worker.js';
import { BATCH_KEYS, batchCommand } from '../commands/batch.js';
import { modelsDownload, modelsList, modelsVerify } from '../commands/models.js';
import { parityCommand } from '../commands/parity.js';
import { scoreCommand } from '../commands/score.js';
import { DEFAULT_UI_PORT, uiCommand } from '../commands/ui.js';
import { RenoError, UsageError, wasmAbort } from '../errors.js';
import { KEY_HELP } from '../config/run-config.js';
import { configOptions, configOverrides, numberFlag } from './options.js';
import { preferenceCommands } from './preference.js';
import { renoVersion } from '../paths.js';

const modelFileFlag = <T>(y: Argv<T>) =>
  y.option('model-file', {
    type: 'string',
    describe:
      "the generator's weights as one single-file checkpoint in the original SD layout (e.g. sd_turbo.safetensors), or a registry entry holding one (sd-turbo-file); configs and tokenizer from the model's folder",
  });

const modelFlags = (y: Argv) =>
  y
    .option('model-dir', { type: 'string', describe: "the generator's folder in the diffusers layout" })
    .option('models-dir', { type: 'string', describe: 'a folder searched as DIR/ORG/NAME for every model' })
    .option('preset', { type: 'string', choices: ['tiny'], describe: 'use the committed tiny random models (smoke test)' });

/** What every model-using command takes from the shared flags (--model-dir, --models-dir, --preset, --backend, --quiet). */
const sharedFlags = (a: { modelDir?: unknown; modelsDir?: unknown; preset?: unknown; backend?: unknown; quiet?: unknown }) => ({
  modelDir: a.modelDir as string | undefined,
  modelsDir: a.modelsDir as string | undefined,
  preset: a.preset as string | undefined,
  backend: a.backend as string | undefined,
  quiet: a.quiet as boolean | undefined,
});

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const cli = yargs(argv)
    .scriptName('reno')
    .version(renoVersion())
    .strict()
    // numbers stay text until a flag's own check converts them, so that an error can quote what was typed
    .parserConfiguration({ 'parse-numbers': false })
    .option('backend', { type: 'string', choices: [...BACKENDS], describe: 'tfjs backend', defaultDescription: 'auto, or $RENO_BACKEND' })
    .option('quiet', { type: 'boolean', default: false, describe: 'no progress output' })
    .option('weight-dtype', {
      type: 'string',
      choices: ['fp32', 'fp16'],
      describe: "frozen conv and Linear weights' storage: fp16 halves the models' memory",
      defaultDescription: 'fp32, or $RENO_WEIGHT_DTYPE',
    })
    // the settings, once: RENO_* variables with the flags over them (src/runtime/settings.ts); a bad value is a usage error
    .middleware((a) => {
      installSettings(readSettings(process.env, { weightDtype: a.weightDtype as string | undefined }));
    })
    .command(
      'generate',
      'generate an image, optimising the noise against the weighted rewards (ReNO)',
      (y) =>
        configOptions(modelFileFlag(modelFlags(y)))
          .option('config-from', {
            type: 'string',
            describe:
              'a PNG reno wrote: its prompt and settings (its "reno" chunk) are the base that --config and flags override; --prompt is then optional',
          })
          .option('user', { type: 'string', describe: "the user's history.json (turns on the personal reward)" })
          .option('preference-model', {
            type: 'string',
            describe: 'the preference checkpoint folder (default: history.json "model", else the preset\'s)',
          })
          .option('size', { type: 'string', describe: "N or WxH in pixels (default: the model's native size)" })
          .option('config', { type: 'string', describe: 'YAML file layered over configs/default.yaml (flags override it)' })
          .option('out', { type: 'string', describe: 'outputs folder', defaultDescription: './outputs' })
          .option('json', { type: 'boolean', describe: 'print a JSON summary on stdout instead of the run folder' }),
      async (a) => {
        const r = await generateCommand({
          prompt: a.prompt as string | undefined,
          configFrom: a.configFrom,
          modelFile: a.modelFile,
          user: a.user,
          preferenceModel: a.preferenceModel,
          size: a.size,
          config: a.config,
          overrides: configOverrides(a),
          ...sharedFlags(a),
          out: a.out,
          json: a.json,
        });
        // the folder is complete either way; the exit code tells a script that the run did not finish
        if (r.result.stopped) code = r.result.stopped.reason === 'interrupted' ? 130 : 1;
      },
    )
    .command(
      'compare',
      'one run per reward alone, one with all rewards and the unoptimised image, scored by every reward',
      (y) =>
        configOptions(modelFileFlag(modelFlags(y)), { required: ['prompt'] })
          .option('rewards', {
            type: 'string',
            describe: 'comma-separated reward names (default: every reward with a weight > 0, and personal with --user)',
          })
          .option('user', { type: 'string', describe: "the user's history.json (adds the personal reward)" })
          .option('preference-model', {
            type: 'string',
            describe: 'the preference checkpoint folder (default: history.json "model", else the preset\'s)',
          })
          .option('size', { type: 'string', describe: "N or WxH in pixels (default: the model's native size)" })
          .option('config', { type: 'string', describe: 'YAML file layered over configs/default.yaml (flags override it)' })
          .option('out', { type: 'string', describe: 'outputs folder', defaultDescription: './outputs' }),
      async (a) => {
        await compareCommand({
          prompt: a.prompt as string,
          modelFile: a.modelFile,
          rewards: a.rewards
            ? a.rewards
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean)
            : undefined,
          user: a.user,
          preferenceModel: a.preferenceModel,
          size: a.size,
          config: a.config,
          overrides: configOverrides(a),
          ...sharedFlags(a),
          out: a.out,
        });
      },
    )
    .command(
      'sweep <file>',
      'a grid of runs over config keys from a YAML file (resumable)',
      (y) =>
        modelFlags(y)
          .positional('file', { type: 'string', demandOption: true })
          .option('out', { type: 'string', describe: 'sweep folder' })
          .option('queue', { type: 'string', describe: 'run the cells as jobs of `reno worker`s on this Redis: redis://HOST:PORT[/DB]' })
          .option('detach', { type: 'boolean', describe: 'with --queue: return once the cells are enqueued' })
          .option('collect', { type: 'boolean', describe: 'only write the summary from the finished cell folders' })
          .option('shard', { type: 'string', describe: 'I/N: run only cells k with k mod N == I (/N: I from $JOB_COMPLETION_INDEX)' }),
      async (a) => {
        await sweepCommand({
          file: a.file,
          out: a.out,
          ...sharedFlags(a),
          queue: a.queue,
          detach: a.detach,
          collect: a.collect,
          shard: a.shard,
        });
      },
    )
    .command(
      'worker',
      'run cell jobs from a Redis queue (reno sweep --queue, reno batch) until SIGTERM',
      (y) =>
        modelFlags(y)
          .option('queue', { type: 'string', demandOption: true, describe: 'redis://HOST:PORT[/DB]' })
          .option('concurrency', {
            ...numberFlag('concurrency', 'jobs run at once by this worker', { integer: true, min: 1 }),
            defaultDescription: '1',
          })
          .option('lock-duration', {
            ...numberFlag(
              'lock-duration',
              "seconds a job's lock lasts; renewed every half of it while the job runs (raise it when one step takes longer)",
              { min: 1 },
            ),
            defaultDescription: '60',
          })
          .option('stalled-interval', {
            ...numberFlag('stalled-interval', 'seconds between checks for jobs whose worker died', { min: 0.1 }),
            defaultDescription: '30',
          }),
      async (a) => {
        await workerCommand({
          queue: a.queue,
          concurrency: a.concurrency as number | undefined,
          lockDuration: a.lockDuration as number | undefined,
          stalledInterval: a.stalledInterval as number | undefined,
          ...sharedFlags(a),
        });
      },
    )
    .command(
      'batch',
      'one run per prompt x user x seed on a Redis queue, with a summary like a sweep',
      (y) =>
        configOptions(modelFlags(y), { keys: BATCH_KEYS })
          .option('prompts', { type: 'string', demandOption: true, describe: 'a text file, one prompt per line' })
          .option('users', { type: 'string', describe: "comma-separated users' history.json files (turns on the personal reward)" })
          .option('seeds', { type: 'string', describe: 'seeds: 0-3, or 1,5,9', defaultDescription: '0' })
          .option('preference-model', {
            type: 'string',
            describe: 'the preference checkpoint folder (default: history.json "model", else the preset\'s)',
          })
          .option('config', { type: 'string', describe: 'YAML file layered over configs/default.yaml (flags override it)' })
          .option('out', { type: 'string', describe: 'batch folder', defaultDescription: './outputs/batch-<prompts file>' })
          .option('queue', { type: 'string', describe: 'redis://HOST:PORT[/DB]' })
          .option('detach', { type: 'boolean', describe: 'return once the cells are enqueued' })
          .option('collect', { type: 'boolean', describe: 'only write the summary from the finished folders' }),
      async (a) => {
        await batchCommand({
          prompts: a.prompts,
          users: a.users,
          seeds: a.seeds,
          preferenceModel: a.preferenceModel,
          config: a.config,
          overrides: configOverrides(a),
          out: a.out,
          queue: a.queue,
          detach: a.detach,
          collect: a.collect,
          modelDir: a.modelDir,
          modelsDir: a.modelsDir,
          preset: a.preset,
          quiet: a.quiet as boolean | undefined,
        });
      },
    )
    .command(
      'score <images..>',
      "score images with every reward (the optimiser's own code path)",
      (y) =>
        modelFlags(y)
          .positional('images', { type: 'string', array: true, demandOption: true })
          .option('prompt', {
            type: 'string',
            describe: 'the prompt the images are scored against',
            defaultDescription: "each image's own, from the reno chunk of a PNG reno wrote",
          })
          .option('rewards', { type: 'string', describe: 'comma-separated reward names (default: all general rewards)' })
          .option('user', { type: 'string', describe: "a user's history.json (adds the personal reward)" })
          .option('preference-model', {
            type: 'string',
            describe: 'the preference checkpoint folder (default: history.json "model", else the preset\'s)',
          })
          .option('guidance', { type: 'string', choices: ['like', 'dislike'], describe: KEY_HELP.guidance, defaultDescription: 'like' })
          .option('n-ref', { ...numberFlag('n-ref', KEY_HELP.n_ref, { integer: true, min: 1 }), alias: 'n_ref', defaultDescription: '8' })
          .option('personal', {
            type: 'string',
            choices: ['auto', 'vlm', 'embedding'],
            describe: KEY_HELP.personal_model,
            defaultDescription: 'auto',
          })
          .option('json', { type: 'boolean', describe: 'machine-readable output' }),
      async (a) => {
        await scoreCommand({
          prompt: a.prompt as string | undefined,
          images: a.images as string[],
          rewards: a.rewards
            ? a.rewards
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean)
            : undefined,
          user: a.user,
          preferenceModel: a.preferenceModel,
          guidance: a.guidance as 'like' | 'dislike' | undefined,
          nRef: a.nRef as number | undefined,
          personal: a.personal as 'auto' | 'vlm' | 'embedding' | undefined,
          json: a.json,
          ...sharedFlags(a),
        });
      },
    )
    .command('models', 'find, download and verify model weights', (y) =>
      modelFlags(y)
        .command(
          'list',
          'each registered model: where it was found, revision, complete or not',
          (yy) => yy.option('json', { type: 'boolean', describe: 'machine-readable output' }),
          async (a) => {
            const p = modelPlaces({
              modelDir: a.modelDir as string | undefined,
              modelsDir: a.modelsDir as string | undefined,
              preset: a.preset as string | undefined,
            });
            await modelsList({ modelDir: p.modelDir, modelsDir: p.modelsDir, json: a.json });
          },
        )
        .command(
          'download <names..>',
          'download models into the Hugging Face cache',
          (yy) => yy.positional('names', { type: 'string', array: true }),
          async (a) => {
            await modelsDownload(a.names as string[], { quiet: a.quiet as boolean | undefined });
          },
        )
        .command(
          'verify [names..]',
          'check that every required file is present and readable',
          (yy) => yy.positional('names', { type: 'string', array: true }),
          async (a) => {
            const p = modelPlaces({
              modelDir: a.modelDir as string | undefined,
              modelsDir: a.modelsDir as string | undefined,
              preset: a.preset as string | undefined,
            });
            const res = await modelsVerify((a.names as string[] | undefined) ?? [], {
              modelDir: p.modelDir,
              modelsDir: p.modelsDir,
              skipSha256: p.smokeTest,
            });
            if (res.some((r) => !r.ok)) code = 1;
          },
        )
        .demandCommand(1),
    )
    .command(
      'ui',
      'a local web app: rate pairs of images into history.json, generate with live progress, browse the outputs',
      (y) =>
        modelFlags(y)
          .option('port', {
            ...numberFlag('port', 'port to listen on (0: any free port)', { integer: true, min: 0 }),
            defaultDescription: String(DEFAULT_UI_PORT),
          })
          .option('host', {
            type: 'string',
            describe: 'address to listen on; anything but loopback must be asked for here',
            defaultDescription: '127.0.0.1',
          })
          .option('history', { type: 'string', describe: 'the history file the Rate page appends to', defaultDescription: './history.json' })
          .option('outputs', { type: 'string', describe: 'the outputs folder runs go to and Browse shows', defaultDescription: './outputs' })
          .option('prompts', { type: 'string', describe: 'a text file of prompts (one a line) offered on the Rate page' })
          .option('images', { type: 'string', describe: 'a folder of images that pairs to rate can be drawn from' }),
      async (a) => {
        await uiCommand({
          port: a.port as number | undefined,
          host: a.host,
          history: a.history,
          outputs: a.outputs,
          prompts: a.prompts,
          images: a.images,
          preset: a.preset,
          modelDir: a.modelDir,
          modelsDir: a.modelsDir,
          backend: a.backend as string | undefined,
        });
      },
    )
    .command('preference', 'the prototype preference model: data, training, evaluation', (y) => preferenceCommands(y))
    .command('dev', 'developer tools', (y) =>
      y
        .command(
          'parity <root>',
          'run every parity case found under a fixtures root',
          (yy) =>
            yy
              .positional('root', { type: 'string', demandOption: true })
              .option('only', { type: 'string', array: true, describe: 'run only these cases (by name)' }),
          async (a) => {
            code = (await parityCommand({ root: a.root, backend: a.backend, only: a.only as string[] | undefined })).code;
          },
        )
        .demandCommand(1),
    )
    .demandCommand(1)
    // a usage error stops here, before any command runs: thrown, it reaches the one handler below (exit 2); a
    // command's own error (or a check's UsageError) is passed on as it is
    .fail((msg, err) => {
      if (err && err.name !== 'YError') throw err;
      throw new UsageError(msg || (err?.message ?? 'usage error'));
    });
  try {
    await cli.parseAsync();
  } catch (caught) {
    const e = wasmAbort(caught) ?? caught;
    if (e instanceof RenoError) {
      process.stderr.write(`reno: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
  return code;
}
