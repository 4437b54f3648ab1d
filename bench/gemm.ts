// tfjs' programs against reno's tiled ones (src/runtime/webgpu/gemm.ts, each tile) and Winograd (src/runtime/webgpu/winograd.ts,
// alone and with each tile for its 16 products) on WebGPU: the 3x3 convolutions of the VAE decoder at 512 px and
// the UNet at a 64x64 latent (forward, with the bias; TFLOP/s counts the direct convolution's work), and the UNet's attention
// products and Linear layers at 4096 and 1024 tokens. Prints ms per product, TFLOP/s, the largest relative
// difference from tfjs' result, and per kind the tile that wins in total (the lines "best conv: ..." and
// "best matmul: ..." that bench/gpu.sh reads to run the ReNO loop with them). --div N divides the spatial sizes and
// token counts (a software adapter).
//   npx tsx bench/gemm.ts [--div 8] [--reps 10] [--tiles 64x64x16,128x64x16] [--only VAE] [--min-tiles 1] [--no-winograd]
// A cell marked "tfjs" is a shape the tile leaves to tfjs' program (fewer than --min-tiles tiles, default MIN_TILES).
import * as tf from '../src/runtime/tf.js';
import { useBackend } from '../src/runtime/backend.js';
import { conv2d } from '../src/nn/ops.js';
import {
  matMulTiled,
  MIN_TILES,
  parseTile,
  setConvTile,
  setMatMulTile,
  setMinTiles,
  tiledConvFits,
  tiledMatMulFits,
  TILES,
} from '../src/runtime/webgpu/gemm.js';
import { relErr } from '../src/parity/types.js';
import { setWinograd, setWinogradMinTiles, winogradFits } from '../src/runtime/webgpu/winograd.js';
import { flag, has, machine, row } from './util.js';

const div = Number(flag('div', '1'));
const reps = Number(flag('reps', '10'));
const tiles = flag('tiles', TILES.join(',')).split(',');
const only = flag('only', '');
setMinTiles(Number(flag('min-tiles', String(MIN_TILES))));
if (has('min-tiles')) setWinogradMinTiles(Number(flag('min-tiles', '1')));
const backend = await useBackend(flag('backend', 'webgpu'));
console.log(`# tiled products; ${backend}; sizes / ${div}; ${reps} products per timing; ${machine()}`);

interface Case {
  name: string;
  /** how many such products one forward pass has (the VAE decoder's exact, the UNet's approximate) */
  count: number;
  gflop: number;
  make: () => tf.Tensor[];
  run: (xs: tf.Tensor[]) => tf.Tensor;
  fits: (xs: tf.Tensor[]) => boolean;
}
const s = (n: number) => Math.max(4, 4 * Math.round(n / div / 4)); // a multiple of 4

/** A 3x3 conv, stride 1, pad 1, with the bias, at h x h: [name, h, Cin, Cout, count]. */
const conv = (name: string, h0: number, cin: number, cout: number, count: number): Case => {
  const h = s(h0);
  return {
    name,
    count,
    gflop: (2 * 9 * cin * cout * h * h) / 1e9,
    make: () => [
      tf.randomNormal([1, h, h, cin], 0, 1, 'float32', 1),
      tf.randomNormal([3, 3, cin, cout], 0, 0.05, 'float32', 2),
      tf.randomNormal([cout], 0, 1, 'float32', 3),
    ],
    run: ([x, w, b]) => conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 1, b),
    fits: ([x, w]) => winogradFits(x.shape, w.shape, 1, 1) || tiledConvFits(x.shape, w.shape, 1, 1),
  };
};
/** op(a) op(b) with a [G, M, K] (G = 0: 2-D), b [K, N] or, transposed, [G, N, K]; token counts given through s(). */
const mat = (name: string, g: number, m: number, k: number, n: number, transB: boolean, count: number): Case => {
  return {
    name,
    count,
    gflop: (2 * Math.max(g, 1) * m * k * n) / 1e9,
    make: () => [tf.randomNormal(g ? [g, m, k] : [m, k], 0, 1, 'float32', 1), tf.randomNormal(transB ? [g, n, k] : [k, n], 0, 0.05, 'float32', 2)],
    run: ([a, b]) => matMulTiled(a, b, false, transB),
    fits: ([a, b]) => tiledMatMulFits(a.shape, b.shape, false, transB),
  };
};

/** A conv variant: tfjs, a tile of the tiled conv, winogradM (F(M x M, 3x3), its products on tfjs' batched matMul) or winogradM+tile. */
function setConv(v: string): void {
  const w = v.startsWith('winograd');
  setWinograd(w ? (Number(v.slice(8, 9)) as 2 | 4) : null);
  setConvTile(w ? null : parseTile(v));
  setMatMulTile(w && v.includes('+') ? parseTile(v.split('+')[1]) : null);
}

const KINDS: { kind: 'conv' | 'matmul'; variants: string[]; set: (t: string) => void; cases: Case[] }[] = [
  {
    kind: 'conv',
    variants: ['tfjs', ...tiles, ...(has('no-winograd') ? [] : ['winograd2', 'winograd4', ...tiles.map((t) => `winograd4+${t}`)])],
    set: setConv,
    cases: [
      conv('VAE 64x64 512->512', 64, 512, 512, 10),
      conv('VAE 128x128 512->512', 128, 512, 512, 7),
      conv('VAE 256x256 512->512', 256, 512, 512, 1),
      conv('VAE 256x256 512->256', 256, 512, 256, 1),
      conv('VAE 256x256 256->256', 256, 256, 256, 5),
      conv('VAE 512x512 256->256', 512, 256, 256, 1),
      conv('VAE 512x512 256->128', 512, 256, 128, 1),
      conv('VAE 512x512 128->128', 512, 128, 128, 5),
      conv('UNet 64x64 320->320', 64, 320, 320, 8),
      conv('UNet 32x32 640->640', 32, 640, 640, 8),
      conv('UNet 16x16 1280->1280', 16, 1280, 1280, 12),
    ],
  },
  {
    kind: 'matmul',
    variants: ['tfjs', ...tiles],
    set: (t) => setMatMulTile(parseTile(t, 'RENO_WEBGPU_MATMUL')),
    cases: [
      mat('UNet attention q k^T, 4096 tokens, 5 heads', 5, s(4096), 64, s(4096), true, 5),
      mat('UNet attention p v, 4096 tokens, 5 heads', 5, s(4096), s(4096), 64, false, 5),
      mat('UNet attention q k^T, 1024 tokens, 10 heads', 10, s(1024), 64, s(1024), true, 5),
      mat('UNet Linear 4096 x 320 -> 320', 0, s(4096), 320, 320, false, 40),
      mat('UNet Linear 4096 x 320 -> 2560 (GEGLU)', 0, s(4096), 320, 2560, false, 5),
      mat('UNet Linear 4096 x 1280 -> 320', 0, s(4096), 1280, 320, false, 5),
      mat('UNet Linear 1024 x 640 -> 640', 0, s(1024), 640, 640, false, 40),
    ],
  },
];

async function time(c: Case, xs: tf.Tensor[]): Promise<number> {
  tf.dispose(c.run(xs)); // compile
  await c.run(xs).data();
  const t0 = performance.now();
  let last: tf.Tensor | null = null;
  for (let i = 0; i < reps; i++) {
    last?.dispose();
    last = c.run(xs);
  }
  await last!.data();
  last!.dispose();
  return (performance.now() - t0) / reps;
}

for (const { kind, variants, set, cases } of KINDS) {
  const selected = cases.filter((c) => c.name.includes(only));
  if (!selected.length) continue;
  const totals = new Map<string, number>(variants.map((v) => [v, 0]));
  console.log(`\n## ${kind}\n`);
  console.log(row([kind, 'count', 'GFLOP each', ...variants.map((v) => `${v} ms (TFLOP/s)`), 'largest rel. diff.']));
  console.log(row(['---', '---', '---', ...variants.map(() => '---'), '---']));
  for (const c of selected) {
    const xs = c.make();
    const cells: string[] = [];
    let ref: Float32Array | null = null;
    let diff = 0;
    for (const v of variants) {
      set(v);
      const y = c.run(xs);
      const d = (await y.data()) as Float32Array;
      y.dispose();
      if (ref === null) ref = d;
      else diff = Math.max(diff, relErr(d, ref));
      const ms = await time(c, xs);
      totals.set(v, totals.get(v)! + ms * c.count);
      cells.push(`${ms.toFixed(2)} (${(c.gflop / ms).toPrecision(3)})${v !== 'tfjs' && !c.fits(xs) ? ' tfjs' : ''}`); // GFLOP of the direct product
    }
    console.log(row([`${c.name}${div > 1 ? ` /${div}` : ''}`, c.count, c.gflop.toFixed(2), ...cells, diff.toExponential(1)]));
    tf.dispose(xs);
  }
  set('tfjs');
  console.log(row([`**these ${kind}s of one forward pass, ms**`, '', '', ...variants.map((v) => totals.get(v)!.toFixed(1)), '']));
  const best = [...totals].sort((a, b) => a[1] - b[1])[0];
  console.log(`best ${kind}: ${best[0]} (${best[1].toFixed(1)} ms against tfjs' ${totals.get('tfjs')!.toFixed(1)} ms)`);
}
