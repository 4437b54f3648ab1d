// Writes presets/tiny/: small random models in the real layouts of every model reno loads (a models dir:
// presets/tiny/ORG/NAME/...), for offline smoke tests. Seeded: rerunning it reproduces the same files.
//   npx tsx scripts/make-tiny-preset.ts [out-dir]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../src/paths.js';
import { writeTinyClipRewards } from './tiny/clip-rewards.js';
import { writeTinyHpsv2Aesthetic } from './tiny/hpsv2-aesthetic.js';
import { writeTinyImageReward } from './tiny/imagereward.js';
import { writeTinySdTurbo } from './tiny/sd-turbo.js';
import { writeTinyPreference } from './tiny/preference.js';
import { writeTinySmolVlm } from './tiny/smolvlm.js';

const root = path.resolve(process.argv[2] ?? path.join(packageRoot(), 'presets', 'tiny'));
const assets = path.join(packageRoot(), 'test', 'fixtures', 'assets');
fs.mkdirSync(root, { recursive: true });
writeTinySdTurbo(root, path.join(assets, 'clip_tokenizer_hf'));
writeTinyClipRewards(root, assets);
writeTinyHpsv2Aesthetic(root, assets);
writeTinyImageReward(root);
writeTinySmolVlm(root);
// trains the tiny preference checkpoint on a synthetic taste world (a few minutes on CPU) and writes examples/
await writeTinyPreference(root);
console.log(`wrote ${root}`);
