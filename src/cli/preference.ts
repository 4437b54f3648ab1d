// yargs wiring of `reno preference ...` (the paper's model, its data and its evaluation); no logic here.
import type { Argv } from 'yargs';
import { preferenceDataset } from '../commands/preference-dataset.js';

export function preferenceCommands(y: Argv): Argv {
  return y
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
