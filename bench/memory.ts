// The weights a full-size ReNO step keeps on the device, by model, at float32 and with --weight-dtype fp16, counted
// from the published architectures' parameter shapes (no tensor is built): what the loop reads every step, and the
// text towers used once per prompt, which reno parks in host memory while the loop runs (Module.park).
//   npx tsx bench/memory.ts [--rewards imagereward,aesthetic,pickscore,clip]
import { fullGeneratorBytes, fullRewardBytes, REWARD_NAMES, type RewardName } from './full-models.js';
import { paperRewards } from './reno-step.js';
import { flag, machine, row } from './util.js';

const GiB = 2 ** 30;
const rewards = flag('rewards', paperRewards().join(',')).split(',') as RewardName[];
for (const r of rewards) if (!REWARD_NAMES.includes(r)) throw new Error(`unknown reward "${r}" (known: ${REWARD_NAMES.join(', ')})`);
console.log(`# weights of a full-size ReNO step, ${new Date().toISOString().slice(0, 10)}, ${machine()}`);
console.log(`# rewards: ${rewards.join(', ')}\n`);
console.log(row(['model', 'loop fp32 GiB', 'loop fp16 GiB', 'text side (parked) fp32 GiB', 'text side fp16 GiB']));
console.log(row(['---', '---', '---', '---', '---']));
const parts: [string, { loop: number; text: number }, { loop: number; text: number }][] = [
  ['SD-Turbo (UNet, VAE decoder; text encoder)', fullGeneratorBytes('fp32'), fullGeneratorBytes('fp16')],
  ...rewards.map(
    (r) => [r, fullRewardBytes(r, 'fp32'), fullRewardBytes(r, 'fp16')] as [string, { loop: number; text: number }, { loop: number; text: number }],
  ),
];
const g = (b: number) => (b / GiB).toFixed(2);
for (const [name, a, h] of parts) console.log(row([name, g(a.loop), g(h.loop), g(a.text), g(h.text)]));
const sum = (i: 1 | 2, k: 'loop' | 'text') => parts.reduce((acc, p) => acc + p[i][k], 0);
console.log(row(['**total**', g(sum(1, 'loop')), g(sum(2, 'loop')), g(sum(1, 'text')), g(sum(2, 'text'))]));
