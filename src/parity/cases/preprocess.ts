// Parity case "preprocess": the shared differentiable CLIP preprocessing (src/image/preprocess.ts, torchvision
// v2 Resize(224, BICUBIC, antialias) + CenterCrop(224) + Normalize(CLIP)) and the antialiased bilinear resize, with
// their VJPs for the fixture's cotangent. Large tensors are stored as summaries (row sums over the last axis,
// column sums over axis -2, and sampled values at flat NCHW indices); those are compared where the full tensor is
// not stored. Every size comes from the fixture's arrays and manifest.
import * as tf from '../../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clipPreprocess, resizeBilinearAA } from '../../image/preprocess.js';
import { readJsonFile } from '../../config/json.js';
import { DataError } from '../../errors.js';
import type { NpyArray } from '../../weights/npy.js';
import { f16ToF32 } from '../../weights/source.js';
import { nchwValues, nhwcTensor, values } from '../tensors.js';
import { check, npy, type Check, type ParityContext } from '../types.js';
import type { ParityCase } from '../types.js';

/** This case's tolerances: torchvision's own float32 result is off from exact by up to 6.8e-5 / 3.3e-4. */
const TOL = { output: 2e-4, gradient: 5e-4 };

const has = (dir: string, name: string) => fs.existsSync(path.join(dir, 'io', `${name}.npy`));

/**
 * A fixture .npy that readNpy does not take as is: float16 (the cotangent; widened to float32) or Fortran order
 * (e.g. a transposed logits matrix; returned in C order). Everything else goes through readNpy.
 */
export function readFixtureNpy(dir: string, name: string): NpyArray {
  const buf = fs.readFileSync(path.join(dir, 'io', `${name}.npy`));
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  const f16 = /'descr':\s*'<f2'/.test(header);
  const fortran = /'fortran_order':\s*True/.test(header);
  if (!f16 && !fortran) return npy(dir, name);
  const shapeStr = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '';
  const shape = shapeStr
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const body = buf.buffer.slice(buf.byteOffset + start + hlen, buf.byteOffset + buf.length);
  let data: Float32Array;
  if (f16) data = f16ToF32(new Uint16Array(body, 0, n));
  else if (/'descr':\s*'<f4'/.test(header)) data = new Float32Array(body, 0, n);
  else throw new DataError(`${name}.npy: unsupported Fortran-order dtype (${header})`);
  if (fortran) {
    // Fortran order: the first index varies fastest; rebuild C order (last index fastest)
    const c = new Float32Array(n);
    const strides = shape.map((_, i) => shape.slice(0, i).reduce((a, b) => a * b, 1)); // Fortran strides
    for (let flat = 0; flat < n; flat++) {
      let rem = flat;
      let src = 0;
      for (let d = shape.length - 1; d >= 0; d--) {
        src += (rem % shape[d]) * strides[d];
        rem = Math.floor(rem / shape[d]);
      }
      c[flat] = data[src];
    }
    data = c;
  }
  return { shape, dtype: 'float32', data };
}

/** An NCHW image input: float32 as is, uint8 as u8 / 255 (ToTensor). */
function imageInput(a: NpyArray): tf.Tensor4D {
  const scale = a.dtype === 'uint8' ? 1 / 255 : 1;
  return nhwcTensor({ ...a, data: Float32Array.from(a.data, (v) => v * scale) });
}

/** Row sums (over the last axis W) and column sums (over H) of flat NCHW values, in float64. */
function summaries(v: Float32Array, shape: number[]): { rowsum: Float64Array; colsum: Float64Array } {
  const [n, c, h, w] = shape;
  const rowsum = new Float64Array(n * c * h);
  const colsum = new Float64Array(n * c * w);
  for (let p = 0; p < n * c; p++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const val = v[(p * h + y) * w + x];
        rowsum[p * h + y] += val;
        colsum[p * w + x] += val;
      }
  return { rowsum, colsum };
}

/** Compare flat NCHW values with the stored full tensor, or with its summary files. */
function compare(dir: string, name: string, ours: Float32Array, shape: number[], kind: 'output' | 'gradient', ctx: ParityContext): Check[] {
  const tol = Math.max(ctx.tol.output, TOL[kind]); // looser only where the backend's own tolerance is (webgpu)
  const label = `preprocess/${name}`;
  if (has(dir, name)) return [check(label, ours, npy(dir, name).data, kind, ctx, { tol })];
  if (!has(dir, `${name}__rowsum`)) throw new DataError(`${dir}: no io/${name}.npy and no summary of it`);
  const { rowsum, colsum } = summaries(ours, shape);
  const idx = npy(dir, `${name}__idx`).data;
  const sampled = Float32Array.from(idx, (i) => ours[i]);
  return [
    check(`${label} rowsum`, rowsum, npy(dir, `${name}__rowsum`).data, kind, ctx, { tol }),
    check(`${label} colsum`, colsum, npy(dir, `${name}__colsum`).data, kind, ctx, { tol }),
    check(`${label} sampled`, sampled, npy(dir, `${name}__vals`).data, kind, ctx, { tol, note: `${idx.length} values` }),
  ];
}

/** Output and VJP of `fn` at the NCHW input, for an NCHW cotangent. */
async function outputAndVjp(
  fn: (x: tf.Tensor4D) => tf.Tensor4D,
  x: tf.Tensor4D,
  cot: tf.Tensor4D,
): Promise<{ out: Float32Array; outShape: number[]; vjp: Float32Array }> {
  const y = fn(x);
  const g = tf.grad((xi: tf.Tensor) => fn(xi as tf.Tensor4D))(x, cot);
  const [n, h, w, c] = y.shape;
  const res = { out: await nchwValues(y), outShape: [n, c, h, w], vjp: await nchwValues(g) };
  tf.dispose([y, g]);
  return res;
}

/** Cotangent [1, 3, s, s] repeated k times on H and W (torch repeat_interleave) and cropped to [oh, ow], NHWC. */
function repeatedCotangent(cot: NpyArray, k: number, oh: number, ow: number): tf.Tensor4D {
  const [n, c, h, w] = cot.shape;
  const out = new Float32Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++)
    for (let y = 0; y < oh; y++)
      for (let x = 0; x < ow; x++) out[(p * oh + y) * ow + x] = cot.data[(p * h + Math.floor(y / k)) * w + Math.floor(x / k)];
  return nhwcTensor({ shape: [n, c, oh, ow], dtype: 'float32', data: out });
}

export const preprocessCase: ParityCase = {
  name: 'preprocess',
  async run(dir, ctx) {
    const manifest = readJsonFile(path.join(dir, 'manifest.json'));
    const cases = ((manifest.checks as Record<string, unknown> | undefined)?.cases ?? {}) as Record<string, { output_hw?: number[] }>;
    // the cotangent of every [1, 3, S, S] output names the crop size S
    const cotFile = fs.readdirSync(path.join(dir, 'io')).find((f) => /^cotangent_\d+\.npy$/.test(f));
    if (!cotFile) throw new DataError(`${dir}: no io/cotangent_<size>.npy`);
    const cotArr = readFixtureNpy(dir, cotFile.slice(0, -4));
    const cot = nhwcTensor(cotArr);
    const size = cotArr.shape[2];
    const checks: Check[] = [];
    // Resize(size, BICUBIC) + CenterCrop(size) + Normalize: one case per stored input
    const inputs = fs
      .readdirSync(path.join(dir, 'io'))
      .map((f) => /^(.+?)_input(_u8)?\.npy$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .sort((a, b) => a[1].localeCompare(b[1]));
    for (const m of inputs) {
      const tag = m[1];
      const x = imageInput(npy(dir, `${tag}_input${m[2] ?? ''}`));
      const r = await outputAndVjp((xi) => clipPreprocess(xi, size), x, cot);
      const [, h, w, c] = x.shape;
      checks.push(...compare(dir, `${tag}_output`, r.out, r.outShape, 'output', ctx));
      checks.push(...compare(dir, `${tag}_vjp`, r.vjp, [1, c, h, w], 'gradient', ctx));
      x.dispose();
    }
    // antialiased bilinear resizes "bilinear_<in>_to_<out>" of the first (uint8) input, with the cotangent
    // repeated to the output size
    for (const [tag, info] of Object.entries(cases)) {
      const bm = /^bilinear_(\d+)_to_(\d+)$/.exec(tag);
      if (!bm) continue;
      const src = inputs.find((m) => {
        const a = npy(dir, `${m[1]}_input${m[2] ?? ''}`);
        return a.shape[2] === Number(bm[1]) && a.shape[3] === Number(bm[1]);
      });
      if (!src) throw new DataError(`${dir}: no ${bm[1]}x${bm[1]} input for ${tag}`);
      const x = imageInput(npy(dir, `${src[1]}_input${src[2] ?? ''}`));
      const [oh, ow] = info.output_hw ?? [Number(bm[2]), Number(bm[2])];
      const k = Math.ceil(oh / size);
      const g = repeatedCotangent(cotArr, k, oh, ow);
      const r = await outputAndVjp((xi) => resizeBilinearAA(xi, oh, ow), x, g);
      const [, h, w, c] = x.shape;
      checks.push(...compare(dir, `${tag}_output`, r.out, r.outShape, 'output', ctx));
      checks.push(...compare(dir, `${tag}_vjp`, r.vjp, [1, c, h, w], 'gradient', ctx));
      tf.dispose([x, g]);
    }
    cot.dispose();
    return checks;
  },
};
