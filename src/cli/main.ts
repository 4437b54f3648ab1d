// yargs wiring only: each command maps its flags onto an async function in src/commands/ and returns an exit code.
// One error handler: RenoError -> "reno: message" and its exit code; anything else is a bug and prints its stack.
import yargs, { type Argv } from 'yargs';
import { BACKENDS } from '../backend.js';
import { compareCommand } from '../commands/compare.js';
import { modelPlaces } from '../commands/common.js';
import { generateCommand } from '../commands/generate.js';
import { sweepCommand } from '../commands/sweep.js';
import { modelsDownload, modelsList, modelsVerify } from '../commands/models.js';
import { parityCommand } from '../commands/parity.js';
import { scoreCommand } from '../commands/score.js';
import { RenoError, wasmAbort } from '../errors.js';
import { preferenceCommands } from './preference.js';
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
    .option('weight-dtype', { type: 'string', choices: ['fp32', 'fp16'], describe: "frozen conv and Linear weights' storage: fp16 halves the models' memory (default fp32, or $RENO_WEIGHT_DTYPE)" })
    .middleware((a) => {
      if (a.weightDtype) process.env.RENO_WEIGHT_DTYPE = a.weightDtype as string; // read where the backend is set up (src/backend.ts)
    })
    .command(
      'generate',
      'generate an image, optimising the noise against the weighted rewards (ReNO)',
      (y) =>
        modelFlags(y)
          .option('prompt', { type: 'string', demandOption: true })
          .option('user', { type: 'string', describe: "the user's history.json (turns on the personal reward)" })
          .option('preference-model', { type: 'string', describe: 'the preference checkpoint folder (else history.json "model", else the preset\'s)' })
          .option('guidance', { type: 'string', choices: ['like', 'dislike'], describe: 'what the personal reward pushes toward' })
          .option('personal', { type: 'string', choices: ['auto', 'vlm', 'embedding'], describe: 'the personal model: auto (the VLM when a checkpoint is found, else embedding), vlm, embedding' })
          .option('seed', { type: 'number' })
          .option('size', { type: 'string', describe: "N or WxH in pixels (default: the model's native size)" })
          .option('steps', { type: 'number', describe: 'evaluated images (default 30)' })
          .option('lr', { type: 'number' })
          .option('optimizer', { type: 'string', choices: ['sgd', 'adam'] })
          .option('grad-clip', { type: 'number' })
          .option('reg-weight', { type: 'number' })
          .option('optimize', { type: 'boolean', describe: 'use --no-optimize for the one-shot image' })
          .option('save-steps', { type: 'boolean', describe: 'write steps/NNN.png for every step' })
          .option('config', { type: 'string', describe: 'YAML file layered over configs/default.yaml' })
          .option('out', { type: 'string', describe: 'outputs folder (default ./outputs)' })
          .strict(false),
      async (a) => {
        const overrides: Record<string, unknown> = {};
        if (a.lr !== undefined) overrides.lr = a.lr;
        if (a.optimizer !== undefined) overrides.optimizer = a.optimizer;
        if (a.gradClip !== undefined) overrides.grad_clip = a.gradClip;
        if (a.regWeight !== undefined) overrides.reg_weight = a.regWeight;
        if (a.optimize !== undefined) overrides.optimize = a.optimize;
        if (a.saveSteps !== undefined) overrides.save_steps = a.saveSteps;
        // dotted config keys (--weights.pickscore 0.1, --n_ref 3): anything yargs did not declare
        const declared = new Set(['_', '$0', 'prompt', 'user', 'preference-model', 'preferenceModel', 'guidance', 'personal', 'seed', 'size', 'steps', 'lr', 'optimizer', 'grad-clip', 'gradClip', 'reg-weight', 'regWeight', 'optimize', 'save-steps', 'saveSteps', 'config', 'out', 'backend', 'quiet', 'weight-dtype', 'weightDtype', 'preset', 'model-dir', 'modelDir', 'models-dir', 'modelsDir']);
        for (const [k, v] of Object.entries(a)) if (!declared.has(k) && !/[A-Z]/.test(k)) overrides[k.replace(/-/g, '_')] = v;
        const r = await generateCommand({
          prompt: a.prompt,
          user: a.user,
          preferenceModel: a.preferenceModel,
          guidance: a.guidance as 'like' | 'dislike' | undefined,
          personal: a.personal as 'auto' | 'vlm' | 'embedding' | undefined,
          seed: a.seed,
          size: a.size,
          steps: a.steps,
          config: a.config,
          overrides,
          modelDir: a.modelDir,
          modelsDir: a.modelsDir,
          preset: a.preset,
          out: a.out,
          backend: a.backend as string | undefined,
          quiet: a.quiet as boolean | undefined,
        });
        // the folder is complete either way; the exit code tells a script that the run did not finish
        if (r.result.stopped) code = r.result.stopped.reason === 'interrupted' ? 130 : 1;
      },
    )
    .command(
      'compare',
      'one run per reward alone, one with all rewards and the unoptimised image, scored by every reward',
      (y) =>
        modelFlags(y)
          .option('prompt', { type: 'string', demandOption: true })
          .option('rewards', { type: 'string', describe: 'comma-separated reward names (default: every enabled reward)' })
          .option('user', { type: 'string', describe: "the user's history.json (adds the personal reward)" })
          .option('preference-model', { type: 'string', describe: 'the preference checkpoint folder' })
          .option('guidance', { type: 'string', choices: ['like', 'dislike'] })
          .option('personal', { type: 'string', choices: ['auto', 'vlm', 'embedding'], describe: 'the personal model: auto (the VLM when a checkpoint is found, else embedding), vlm, embedding' })
          .option('seed', { type: 'number' })
          .option('steps', { type: 'number' })
          .option('size', { type: 'string' })
          .option('config', { type: 'string' })
          .option('out', { type: 'string' }),
      async (a) => {
        await compareCommand({
          prompt: a.prompt,
          rewards: a.rewards ? a.rewards.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
          user: a.user,
          preferenceModel: a.preferenceModel,
          guidance: a.guidance as 'like' | 'dislike' | undefined,
          personal: a.personal as 'auto' | 'vlm' | 'embedding' | undefined,
          seed: a.seed,
          steps: a.steps,
          size: a.size,
          config: a.config,
          modelDir: a.modelDir,
          modelsDir: a.modelsDir,
          preset: a.preset,
          out: a.out,
          backend: a.backend as string | undefined,
          quiet: a.quiet as boolean | undefined,
        });
      },
    )
    .command(
      'sweep <file>',
      'a grid of runs over config keys from a YAML file (resumable)',
      (y) => modelFlags(y).positional('file', { type: 'string', demandOption: true }).option('out', { type: 'string', describe: 'sweep folder' }),
      async (a) => {
        await sweepCommand({ file: a.file, out: a.out, modelDir: a.modelDir, modelsDir: a.modelsDir, preset: a.preset, backend: a.backend as string | undefined, quiet: a.quiet as boolean | undefined });
      },
    )
    .command(
      'score <images..>',
      'score images with every reward (the optimiser\'s own code path)',
      (y) =>
        modelFlags(y)
          .positional('images', { type: 'string', array: true, demandOption: true })
          .option('prompt', { type: 'string', demandOption: true })
          .option('rewards', { type: 'string', describe: 'comma-separated reward names (default: all general rewards)' })
          .option('user', { type: 'string', describe: "a user's history.json (adds the personal reward)" })
          .option('preference-model', { type: 'string', describe: 'the preference checkpoint folder' })
          .option('guidance', { type: 'string', choices: ['like', 'dislike'] })
          .option('personal', { type: 'string', choices: ['auto', 'vlm', 'embedding'], describe: 'the personal model: auto (the VLM when a checkpoint is found, else embedding), vlm, embedding' })
          .option('json', { type: 'boolean', describe: 'machine-readable output' }),
      async (a) => {
        await scoreCommand({
          prompt: a.prompt,
          images: a.images as string[],
          rewards: a.rewards ? a.rewards.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
          user: a.user,
          preferenceModel: a.preferenceModel,
          guidance: a.guidance as 'like' | 'dislike' | undefined,
          personal: a.personal as 'auto' | 'vlm' | 'embedding' | undefined,
          json: a.json,
          modelDir: a.modelDir,
          modelsDir: a.modelsDir,
          preset: a.preset,
          backend: a.backend as string | undefined,
          quiet: a.quiet as boolean | undefined,
        });
      },
    )
    .command('models', 'find, download and verify model weights', (y) =>
      modelFlags(y)
        .command('list', 'each registered model: where it was found, revision, complete or not', (yy) => yy.option('json', { type: 'boolean' }), async (a) => {
          const p = modelPlaces({ modelDir: a.modelDir as string | undefined, modelsDir: a.modelsDir as string | undefined, preset: a.preset as string | undefined });
          await modelsList({ modelDir: p.modelDir, modelsDir: p.modelsDir, json: a.json });
        })
        .command('download <names..>', 'download models into the Hugging Face cache', (yy) => yy.positional('names', { type: 'string', array: true }), async (a) => {
          await modelsDownload(a.names as string[], { quiet: a.quiet as boolean | undefined });
        })
        .command('verify [names..]', 'check that every required file is present and readable', (yy) => yy.positional('names', { type: 'string', array: true }), async (a) => {
          const p = modelPlaces({ modelDir: a.modelDir as string | undefined, modelsDir: a.modelsDir as string | undefined, preset: a.preset as string | undefined });
          const res = await modelsVerify((a.names as string[] | undefined) ?? [], { modelDir: p.modelDir, modelsDir: p.modelsDir, skipSha256: p.smokeTest });
          if (res.some((r) => !r.ok)) code = 1;
        })
        .demandCommand(1),
    )
    .command('preference', "the prototype preference model: data, training, evaluation", (y) => preferenceCommands(y))
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
      void y;
      process.stderr.write(`reno: ${msg}\n`);
      code = 2;
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
