// tfjs' conv program against reno's tiled one (src/nn/webgpu-conv.ts, each tile) on the 3x3 convolutions of the VAE
// decoder at 512 px and the UNet at a 64x64 latent, forward with the bias, on WebGPU. Prints ms per conv, TFLOP/s,
// the largest relative difference from tfjs' result, and the tile that wins in total (the line "best: ..." that
// bench/gpu.sh reads to run the ReNO loop with it). --div N divides the spatial sizes (a software adapter).
//   npx tsx bench/conv.ts [--div 8] [--reps 10] [--tiles 64x64x16,128x64x16] [--only VAE] [--min-tiles 1]
// A cell marked "tfjs" is a shape the tile leaves to tfjs' program (fewer than --min-tiles tiles, default MIN_TILES).
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/backend.js';
import { conv2d } from '../src/nn/ops.js';
import { CONV_TILES, MIN_TILES, parseConvTile, setConvMinTiles, setConvTile, tiledConvFits } from '../src/nn/webgpu-conv.js';
import { maxRelErr } from '../test/helpers.js';
import { flag, machine, row } from './util.js';

const div = Number(flag('div', '1'));
const reps = Number(flag('reps', '10'));
const tiles = flag('tiles', CONV_TILES.join(',')).split(',');
const only = flag('only', '');
setConvMinTiles(Number(flag('min-tiles', String(MIN_TILES))));
const backend = await useBackend(flag('backend', 'webgpu'));
console.log(`# 3x3 conv, stride 1, pad 1, bias; ${backend}; spatial sizes / ${div}; ${reps} convs per timing; ${machine()}`);

// [H (= W), Cin, Cout, how many such convs one forward pass has (the VAE decoder's exact; the UNet's approximate)]
const SHAPES: [string, number, number, number, number][] = [
  ['VAE 64x64 512->512', 64, 512, 512, 10],
  ['VAE 128x128 512->512', 128, 512, 512, 7],
  ['VAE 256x256 512->512', 256, 512, 512, 1],
  ['VAE 256x256 512->256', 256, 512, 256, 1],
  ['VAE 256x256 256->256', 256, 256, 256, 5],
  ['VAE 512x512 256->256', 512, 256, 256, 1],
  ['VAE 512x512 256->128', 512, 256, 128, 1],
  ['VAE 512x512 128->128', 512, 128, 128, 5],
  ['UNet 64x64 320->320', 64, 320, 320, 8],
  ['UNet 32x32 640->640', 32, 640, 640, 8],
  ['UNet 16x16 1280->1280', 16, 1280, 1280, 12],
];

async function time(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor): Promise<number> {
  tf.dispose(conv2d(x, w, 1, 1, b)); // compile
  await conv2d(x, w, 1, 1, b).data();
  const t0 = performance.now();
  let last: tf.Tensor | null = null;
  for (let i = 0; i < reps; i++) {
    last?.dispose();
    last = conv2d(x, w, 1, 1, b);
  }
  await last!.data();
  last!.dispose();
  return (performance.now() - t0) / reps;
}

const selected = SHAPES.filter((sh) => sh[0].includes(only));
if (!selected.length) throw new Error(`--only ${only}: no conv shape's name contains it (${SHAPES.map((sh) => sh[0]).join('; ')})`);
const variants = ['tfjs', ...tiles];
const totals = new Map<string, number>(variants.map((v) => [v, 0]));
console.log(row(['conv', 'count', 'GFLOP each', ...variants.map((v) => `${v} ms (TFLOP/s)`), 'largest rel. diff.']));
console.log(row(['---', '---', '---', ...variants.map(() => '---'), '---']));
for (const [name, h0, cin, cout, count] of selected) {
  const h = Math.max(4, Math.round(h0 / div));
  const x = tf.randomNormal([1, h, h, cin], 0, 1, 'float32', 1) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, cin, cout], 0, 0.05, 'float32', 2) as tf.Tensor4D;
  const b = tf.randomNormal([cout], 0, 1, 'float32', 3);
  const gflop = (2 * 9 * cin * cout * h * h) / 1e9;
  const cells: string[] = [];
  let ref: Float32Array | null = null;
  let diff = 0;
  for (const v of variants) {
    setConvTile(parseConvTile(v));
    const y = conv2d(x, w, 1, 1, b);
    const d = (await y.data()) as Float32Array;
    y.dispose();
    if (ref === null) ref = d;
    else diff = Math.max(diff, maxRelErr(d, ref));
    const ms = await time(x, w, b);
    totals.set(v, totals.get(v)! + ms * count);
    const fallback = v !== 'tfjs' && !tiledConvFits(x.shape, w.shape, 1, 1);
    cells.push(`${ms.toFixed(2)} (${(gflop / ms).toPrecision(3)})${fallback ? ' tfjs' : ''}`);
  }
  console.log(row([`${name}${div > 1 ? ` /${div}` : ''}`, count, gflop.toFixed(2), ...cells, diff.toExponential(1)]));
  tf.dispose([x, w, b]);
}
setConvTile(null);
console.log(row(['**one forward pass of these convs, ms**', '', '', ...variants.map((v) => totals.get(v)!.toFixed(1)), '']));
const best = [...totals].sort((a, b) => a[1] - b[1])[0];
console.log(`best: ${best[0]} (${best[1].toFixed(1)} ms against tfjs' ${totals.get('tfjs')!.toFixed(1)} ms)`);
