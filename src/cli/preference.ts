// yargs wiring of `reno preference ...` (the paper's model, its data and its evaluation); no logic here.
import type { Argv } from 'yargs';
import { preferenceSynth, preferenceTrain } from '../commands/preference.js';
import { preferenceDataset } from '../commands/preference-dataset.js';
import { preferenceAttention } from '../commands/preference-attention.js';
import { preferenceEval } from '../commands/preference-eval.js';
import { preferenceTsne } from '../commands/preference-tsne.js';
import { UsageError } from '../errors.js';
import { EMBEDDING_TOWERS } from '../config/run-config.js';
import { numberFlag } from './options.js';

const list = (v: unknown) =>
  typeof v === 'string'
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : undefined;

/** "--users 6" (how many) or "--users u001,u007" (which). */
const users = (v: unknown) => (v === undefined ? undefined : /^\d+$/.test(String(v)) ? Number(v) : list(String(v)));

/** Comma-separated integers (e.g. --n-ref 0,1,2,4,8). */
function ints(v: unknown, flag: string): number[] | undefined {
  const l = list(v === undefined ? undefined : String(v));
  if (!l) return undefined;
  return l.map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n)) throw new UsageError(`--${flag} takes comma-separated integers, found "${x}"`);
    return n;
  });
}

/** --head N or --head mean. */
function head(v: unknown): number | 'mean' | undefined {
  if (v === undefined || v === 'mean') return v;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--head takes a head index or "mean", found "${v}"`);
  return n;
}

export function preferenceCommands(y: Argv): Argv {
  return y
    .command(
      'synth',
      'write a synthetic taste world in the dataset format (images/ + pairs.jsonl)',
      (yy) =>
        yy
          .option('out', { type: 'string', demandOption: true, describe: 'dataset folder to write (images/ + pairs.jsonl)' })
          .option('users', numberFlag('users', 'users (default 40)', { integer: true, min: 1 }))
          .option('seed', numberFlag('seed', 'random seed', { integer: true, min: 0, default: 0 }))
          .option('pairs-per-user', numberFlag('pairs-per-user', 'pairs per user', { integer: true, min: 1 }))
          .option('groups', numberFlag('groups', 'shared taste groups', { integer: true, min: 1 }))
          .option('unseen', numberFlag('unseen', 'share of users kept unseen (test only)', { integer: false, min: 0 }))
          .option('world', {
            type: 'string',
            choices: ['default', 'personalisation'],
            describe: 'personalisation: two taste groups that disagree (light vs dark backgrounds), 100 users x 30 pairs (the benchmark world)',
          }),
      async (a) => {
        await preferenceSynth({
          world: a.world as 'default' | 'personalisation' | undefined,
          out: a.out,
          ...(a.users !== undefined ? { users: a.users } : {}),
          seed: a.seed,
          ...(a.pairsPerUser !== undefined ? { pairsPerUser: a.pairsPerUser } : {}),
          groups: a.groups,
          unseen: a.unseen,
          quiet: a.quiet as boolean | undefined,
        });
      },
    )
    .command(
      'train',
      "train the prototype preference model with the paper's losses (LoRA on the language model, then prototypes)",
      (yy) =>
        yy
          .option('data', { type: 'string', demandOption: true, describe: 'dataset folder (pairs.jsonl + images/)' })
          .option('out', { type: 'string', demandOption: true, describe: 'checkpoint folder' })
          .option('resume', { type: 'boolean', describe: 'continue the checkpoint in --out' })
          .option('force', { type: 'boolean', describe: 'replace a checkpoint in --out' })
          .option('backbone', { type: 'string', describe: 'the SmolVLM folder (else the registry / --models-dir / --preset)' })
          .option('models-dir', { type: 'string', describe: 'a folder searched as DIR/ORG/NAME for the backbone' })
          .option('preset', { type: 'string', choices: ['tiny'], describe: 'use the committed tiny random backbone (smoke test)' })
          .option('prototypes', numberFlag('prototypes', 'prototype rows (0: none)', { integer: true, min: 0 }))
          .option('n-ref', numberFlag('n-ref', 'reference pairs per sample', { integer: true, min: 0 }))
          .option('prompt', { type: 'boolean', describe: '--no-prompt: entries without the prompt (ViPer*)' })
          .option('aux-loss', { type: 'boolean', describe: '--no-aux-loss: L_base only (no L+ / L-)' })
          .option('targets', numberFlag('targets', 'target pairs per sample scored after one history (default 1)', { integer: true, min: 1 }))
          .option(
            'history-loss',
            numberFlag(
              'history-loss',
              "weight of the history loss (each reference pair's first label predicted from the entries before it; 0: off)",
              { integer: false, min: 0 },
            ),
          )
          .option('lora-rank', numberFlag('lora-rank', 'LoRA rank', { integer: true, min: 1 }))
          .option('lora-alpha', numberFlag('lora-alpha', 'LoRA alpha (scale alpha/rank)', { integer: false, min: 0, exclusiveMin: true }))
          .option('lora-targets', { type: 'string', describe: 'comma-separated (default q_proj,k_proj,v_proj,o_proj)' })
          .option('lora-mlp', { type: 'boolean', describe: 'also put LoRA on the MLP projections' })
          .option('train-vision', { type: 'boolean', describe: 'also train the vision tower (--no-train-vision freezes it)' })
          .option('train-text', { type: 'boolean', describe: 'train the language model in full, not only LoRA (--no-train-text: LoRA only)' })
          .option('steps', numberFlag('steps', 'stage 1 optimiser steps', { integer: true, min: 0 }))
          .option('proto-steps', numberFlag('proto-steps', 'stage 2 (prototypes only) steps', { integer: true, min: 0 }))
          .option('batch', numberFlag('batch', 'effective batch (gradient accumulation)', { integer: true, min: 1 }))
          .option('lr', numberFlag('lr', 'learning rate (stage 1)', { integer: false, min: 0, exclusiveMin: true }))
          .option('proto-lr', numberFlag('proto-lr', 'learning rate of the prototypes (stage 2)', { integer: false, min: 0, exclusiveMin: true }))
          .option('weight-decay', numberFlag('weight-decay', 'AdamW weight decay', { integer: false, min: 0 }))
          .option('seed', numberFlag('seed', 'random seed', { integer: true, min: 0 }))
          .option('save-every', numberFlag('save-every', 'write a checkpoint every N steps', { integer: true, min: 0 }))
          .option('eval-every', numberFlag('eval-every', 'evaluate on the val split every N steps', { integer: true, min: 0 })),
      async (a) => {
        await preferenceTrain({
          data: a.data,
          out: a.out,
          resume: a.resume,
          force: a.force,
          backbone: a.backbone,
          modelsDir: a.modelsDir,
          preset: a.preset,
          prototypes: a.prototypes,
          nRef: a.nRef,
          noPrompt: a.prompt === false ? true : undefined,
          noAuxLoss: a.auxLoss === false ? true : undefined,
          historyLoss: a.historyLoss,
          targets: a.targets,
          copyShare: a.copyShare as number | undefined,
          loraRank: a.loraRank,
          loraAlpha: a.loraAlpha,
          loraTargets: list(a.loraTargets),
          loraMlp: a.loraMlp,
          trainVision: a.trainVision,
          trainText: a.trainText,
          steps: a.steps,
          protoSteps: a.protoSteps,
          batch: a.batch,
          lr: a.lr,
          protoLr: a.protoLr,
          weightDecay: a.weightDecay,
          seed: a.seed,
          saveEvery: a.saveEvery,
          evalEvery: a.evalEvery,
          backend: a.backend as string | undefined,
          quiet: a.quiet as boolean | undefined,
        });
      },
    )
    .command(
      'dataset',
      'build the per-user dataset from Pick-a-Pic v2 parquet shards',
      (yy) =>
        yy
          .option('pickapic', { type: 'string', array: true, demandOption: true, describe: 'parquet files or folders' })
          .option('out', { type: 'string', demandOption: true, describe: 'dataset folder (images/ + pairs.jsonl)' })
          .option(
            'min-liked',
            numberFlag('min-liked', 'keep users with at least this many unique liked images', { integer: true, min: 1, default: 11 }),
          )
          .option('val-users', numberFlag('val-users', 'share of users in val (paper: 0.037)', { integer: false, min: 0 }))
          .option('test-users', numberFlag('test-users', 'share of users in test (paper: 0.029)', { integer: false, min: 0 }))
          .option('seen-share', numberFlag('seen-share', 'share of test users also in train (seen)', { integer: false, min: 0 }))
          .option('seen-holdout', numberFlag('seen-holdout', "share of a seen user's pairs held out for test", { integer: false, min: 0 }))
          .option('seed', numberFlag('seed', 'random seed', { integer: true, min: 0, default: 0 }))
          .option('overwrite', { type: 'boolean', default: false, describe: 'replace a dataset already in --out' }),
      async (a) => {
        await preferenceDataset({
          pickapic: a.pickapic as string[],
          out: a.out,
          minLiked: a.minLiked,
          valUsers: a.valUsers,
          testUsers: a.testUsers,
          seenShare: a.seenShare,
          seenHoldout: a.seenHoldout,
          seed: a.seed,
          overwrite: a.overwrite,
          quiet: a.quiet as boolean | undefined,
        });
      },
    )
    .command(
      'eval',
      "the paper's evaluation on the test split: top-1 (seen / unseen), top-1/2/3 of 4 candidates, an N_ref sweep, reward and untrained baselines; tables.md / tables.json / nref.png",
      (yy) =>
        yy
          .option('model', {
            type: 'string',
            array: true,
            demandOption: true,
            describe: 'checkpoint folder; repeat for ablations (the first is the main model); LABEL=DIR names a column',
          })
          .option('data', { type: 'string', demandOption: true, describe: 'dataset folder (pairs.jsonl + images/)' })
          .option('json', { type: 'boolean', describe: 'print tables.json instead of the markdown tables' })
          .option('baselines', {
            type: 'string',
            describe:
              'comma-separated reward names, "untrained" and/or "embedding" (or embedding:centroid|nn|ridge|ridge-sub|ridge-cat, one row each); "none" for none (default: every general reward found, and untrained)',
          })
          .option('embedding-tower', {
            type: 'string',
            choices: [...EMBEDDING_TOWERS],
            describe: "the embedding baseline's image tower (default pickscore)",
          })
          .option('n-ref', {
            type: 'string',
            describe: "N_ref values of the sweep, comma-separated (default 0,1,2,4,.. up to the checkpoint's n_ref)",
          })
          .option('controls', {
            type: 'string',
            describe:
              'controls on the main checkpoint, comma-separated: swap (a row with each user scored after another taste group\'s history); "none" for none (default swap)',
          })
          .option('out', { type: 'string', describe: 'output folder (default <first checkpoint>/eval)' })
          .option('backbone', { type: 'string', describe: 'the SmolVLM folder (default: the one each checkpoint recorded)' })
          .option(
            'sets-per-user',
            numberFlag('sets-per-user', 'candidate sets per user (default: one per liked query image)', { integer: true, min: 1 }),
          )
          .option('models-dir', { type: 'string', describe: 'where the reward models are' })
          .option('preset', { type: 'string', choices: ['tiny'], describe: 'use the committed tiny random reward models (smoke test)' })
          .option('seed', numberFlag('seed', 'random seed', { integer: true, min: 0, default: 0 })),
      async (a) => {
        const b = list(a.baselines);
        const c = list(a.controls);
        await preferenceEval({
          controls: c && c.length === 1 && c[0] === 'none' ? [] : c,
          model: a.model as string[],
          data: a.data,
          json: a.json,
          baselines: b && b.length === 1 && b[0] === 'none' ? [] : b,
          nRef: ints(a.nRef, 'n-ref'),
          embeddingTower: a.embeddingTower,
          out: a.out,
          backbone: a.backbone,
          setsPerUser: a.setsPerUser,
          modelsDir: a.modelsDir,
          preset: a.preset,
          seed: a.seed,
          backend: a.backend as string | undefined,
          quiet: a.quiet as boolean | undefined,
        });
      },
    )
    .command(
      'attention',
      "heat maps of the attention between one target image's tokens and the prototypes, for several users and orderings of their history (Fig. 3); attention.png / attention.json",
      (yy) =>
        yy
          .option('model', { type: 'string', demandOption: true, describe: 'checkpoint folder (with prototypes)' })
          .option('data', { type: 'string', demandOption: true, describe: 'dataset folder' })
          .option('users', { type: 'string', describe: 'how many test users (default 4) or a comma-separated list' })
          .option('orders', numberFlag('orders', 'orderings of each history (default 4)', { integer: true, min: 1 }))
          .option('layer', numberFlag('layer', 'language-model layer (default the last)', { integer: true, min: 0 }))
          .option('head', { type: 'string', describe: 'attention head index or "mean" (default mean)' })
          .option('target', { type: 'string', describe: 'the target image (default: a liked test image of the first user)' })
          .option('prompt', { type: 'string', describe: "the target's prompt" })
          .option('backbone', { type: 'string', describe: 'the SmolVLM folder (default: the one the checkpoint recorded)' })
          .option('out', { type: 'string', describe: 'output folder (default <checkpoint>/eval)' })
          .option('seed', numberFlag('seed', 'random seed', { integer: true, min: 0, default: 0 })),
      async (a) => {
        await preferenceAttention({
          model: a.model,
          data: a.data,
          users: users(a.users),
          orders: a.orders,
          layer: a.layer,
          head: head(a.head),
          target: a.target,
          prompt: a.prompt,
          backbone: a.backbone,
          out: a.out,
          seed: a.seed,
          backend: a.backend as string | undefined,
          quiet: a.quiet as boolean | undefined,
        });
      },
    )
    .command(
      'tsne',
      "t-SNE of the features of each test user's liked images, coloured by user (Fig. 9); tsne.png / tsne.json",
      (yy) =>
        yy
          .option('model', { type: 'string', demandOption: true, describe: 'checkpoint folder' })
          .option('data', { type: 'string', demandOption: true, describe: 'dataset folder' })
          .option('users', { type: 'string', describe: 'how many test users (default 8, at most 10) or a comma-separated list' })
          .option(
            'perplexity',
            numberFlag('perplexity', 't-SNE perplexity (default 30, clamped to (n-1)/3)', { integer: false, min: 0, exclusiveMin: true }),
          )
          .option('iterations', numberFlag('iterations', 't-SNE steps (default 1000)', { integer: true, min: 1 }))
          .option('backbone', { type: 'string', describe: 'the SmolVLM folder (default: the one the checkpoint recorded)' })
          .option('out', { type: 'string', describe: 'output folder (default <checkpoint>/eval)' })
          .option('seed', numberFlag('seed', 'random seed', { integer: true, min: 0, default: 0 })),
      async (a) => {
        await preferenceTsne({
          model: a.model,
          data: a.data,
          users: users(a.users),
          perplexity: a.perplexity,
          iterations: a.iterations,
          backbone: a.backbone,
          out: a.out,
          seed: a.seed,
          backend: a.backend as string | undefined,
          quiet: a.quiet as boolean | undefined,
        });
      },
    )
    .demandCommand(1);
}
