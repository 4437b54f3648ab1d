// yargs wiring of `reno preference ...` (the paper's model, its data and its evaluation); no logic here.
import type { Argv } from 'yargs';
import { preferenceSynth, preferenceTrain } from '../commands/preference.js';
import { preferenceDataset } from '../commands/preference-dataset.js';

const list = (v: unknown) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

export function preferenceCommands(y: Argv): Argv {
  return y
    .command(
      'synth',
      'write a synthetic taste world in the dataset format (images/ + pairs.jsonl)',
      (yy) =>
        yy
          .option('out', { type: 'string', demandOption: true })
          .option('users', { type: 'number', describe: 'users (default 40)' })
          .option('seed', { type: 'number', default: 0 })
          .option('pairs-per-user', { type: 'number' })
          .option('groups', { type: 'number', describe: 'shared taste groups' })
          .option('unseen', { type: 'number', describe: 'share of users kept unseen (test only)' }),
      async (a) => {
        await preferenceSynth({ out: a.out, users: a.users, seed: a.seed, pairsPerUser: a.pairsPerUser, groups: a.groups, unseen: a.unseen, quiet: a.quiet as boolean | undefined });
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
          .option('models-dir', { type: 'string' })
          .option('preset', { type: 'string', choices: ['tiny'] })
          .option('prototypes', { type: 'number', describe: 'prototype rows (0: none)' })
          .option('n-ref', { type: 'number', describe: 'reference pairs per sample' })
          .option('prompt', { type: 'boolean', describe: '--no-prompt: entries without the prompt (ViPer*)' })
          .option('aux-loss', { type: 'boolean', describe: '--no-aux-loss: L_base only (no L+ / L-)' })
          .option('lora-rank', { type: 'number' })
          .option('lora-alpha', { type: 'number' })
          .option('lora-targets', { type: 'string', describe: 'comma-separated (default q_proj,k_proj,v_proj,o_proj)' })
          .option('lora-mlp', { type: 'boolean' })
          .option('train-vision', { type: 'boolean', describe: 'also train the vision tower (--no-train-vision freezes it)' })
          .option('steps', { type: 'number', describe: 'stage 1 optimiser steps' })
          .option('proto-steps', { type: 'number', describe: 'stage 2 (prototypes only) steps' })
          .option('batch', { type: 'number', describe: 'effective batch (gradient accumulation)' })
          .option('lr', { type: 'number' })
          .option('proto-lr', { type: 'number' })
          .option('weight-decay', { type: 'number' })
          .option('seed', { type: 'number' })
          .option('save-every', { type: 'number' })
          .option('eval-every', { type: 'number' }),
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
          loraRank: a.loraRank,
          loraAlpha: a.loraAlpha,
          loraTargets: list(a.loraTargets),
          loraMlp: a.loraMlp,
          trainVision: a.trainVision,
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
          .option('min-liked', { type: 'number', default: 11, describe: 'keep users with at least this many unique liked images' })
          .option('val-users', { type: 'number', describe: 'share of users in val (paper: 0.037)' })
          .option('test-users', { type: 'number', describe: 'share of users in test (paper: 0.029)' })
          .option('seen-share', { type: 'number', describe: 'share of test users also in train (seen)' })
          .option('seen-holdout', { type: 'number', describe: "share of a seen user's pairs held out for test" })
          .option('seed', { type: 'number', default: 0 })
          .option('overwrite', { type: 'boolean', default: false }),
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
    .demandCommand(1);
}
