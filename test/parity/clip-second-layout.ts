// A second fixture root for the "clip" and "preprocess" parity cases with other sizes than the upstream fixtures:
// CLIP with other patch / image sizes, hidden sizes, head counts and layer counts per tower, quick_gelu in one tower,
// a non-legacy eos id (first-occurrence pooling), 3 images x 2 texts with padding; preprocessing with a 32 crop,
// a non-square input whose centre crop rounds half to even, stored both in full and as summaries, and a bilinear
// resize. References are computed by reno on the cpu backend (like test/parity/second-layout.ts); the runner is
// then run on another backend.
import * as tf from '../../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clipPreprocess, resizeBilinearAA } from '../../src/image/preprocess.js';
import { loadClipModel } from '../../src/models/clip/load.js';
import { useBackend } from '../../src/runtime/backend.js';
import { clipConfig } from '../../src/models/clip/config.js';
import { ClipModel } from '../../src/models/clip/model.js';
import { gaussian } from '../../src/optimize/noise.js';
import { nchwValues, nhwcTensor } from '../../src/parity/tensors.js';
import { writeNpy } from '../../src/weights/npy.js';
import { randomStateDict } from '../../src/weights/random.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';

export const CLIP2 = {
  architectures: ['CLIPModel'],
  model_type: 'clip',
  projection_dim: 12,
  logit_scale_init_value: 2.6592,
  text_config: {
    hidden_size: 20,
    intermediate_size: 36,
    num_attention_heads: 4,
    num_hidden_layers: 3,
    max_position_embeddings: 12,
    vocab_size: 50,
    eos_token_id: 49,
    hidden_act: 'gelu',
  },
  vision_config: {
    hidden_size: 24,
    intermediate_size: 40,
    num_attention_heads: 3,
    num_hidden_layers: 1,
    image_size: 20,
    patch_size: 5,
    hidden_act: 'quick_gelu',
  },
};
const N_IMG = 3;
const N_TXT = 2;
const LEN = 12;
const CROP = 32;

function npyOut(dir: string, name: string, shape: number[], data: Float32Array | Int32Array): void {
  fs.mkdirSync(path.join(dir, 'io'), { recursive: true });
  writeNpy(path.join(dir, 'io', `${name}.npy`), shape, data);
}

const randn = (n: number, seed: number) => gaussian(n, seed);
const uniform = (n: number, seed: number) => randn(n, seed).map((v) => 1 / (1 + Math.exp(-v)));

async function buildClip(root: string): Promise<void> {
  const dir = path.join(root, 'clip');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(CLIP2));
  const sd = randomStateDict(new ClipModel(clipConfig(CLIP2, 'clip2')), 31);
  sd.set('logit_scale', { shape: [], data: Float32Array.of(Math.log(20)) });
  writeSafetensors(path.join(dir, 'model.safetensors'), sd);
  // [bos, tokens..., eos 49, pad 0...]: 7 and 12 real tokens
  const ids = new Int32Array(N_TXT * LEN);
  const mask = new Int32Array(N_TXT * LEN);
  [7, 12].forEach((n, r) => {
    for (let j = 0; j < n; j++) {
      ids[r * LEN + j] = j === 0 ? 48 : j === n - 1 ? 49 : 1 + ((r * 13 + j * 7) % 47);
      mask[r * LEN + j] = 1;
    }
  });
  const s = CLIP2.vision_config.image_size;
  const pix = randn(N_IMG * 3 * s * s, 32);
  const m = loadClipModel(dir);
  const out = m.forward(
    tf.tensor2d(ids, [N_TXT, LEN], 'int32'),
    tf.tensor2d(mask, [N_TXT, LEN], 'int32'),
    nhwcTensor({ shape: [N_IMG, 3, s, s], dtype: 'float32', data: pix }),
  );
  npyOut(dir, 'input_ids', [N_TXT, LEN], ids);
  npyOut(dir, 'attention_mask', [N_TXT, LEN], mask);
  npyOut(dir, 'pixel_values', [N_IMG, 3, s, s], pix);
  const f32 = (t: tf.Tensor) => t.dataSync() as Float32Array;
  npyOut(dir, 'text_last_hidden_state', out.text.lastHiddenState.shape, f32(out.text.lastHiddenState));
  npyOut(dir, 'vision_last_hidden_state', out.vision.lastHiddenState.shape, f32(out.vision.lastHiddenState));
  npyOut(dir, 'vision_pooler_output', out.vision.pooled.shape, f32(out.vision.pooled));
  npyOut(dir, 'text_embeds', out.textEmbeds.shape, f32(out.textEmbeds));
  npyOut(dir, 'image_embeds', out.imageEmbeds.shape, f32(out.imageEmbeds));
  npyOut(dir, 'logits_per_image', out.logitsPerImage.shape, f32(out.logitsPerImage));
  m.dispose();
}

/** rowsum / colsum / sampled summary files of flat NCHW values (what the fixture generator stores for big tensors). */
function summary(dir: string, name: string, v: Float32Array, shape: number[]): void {
  const [n, c, h, w] = shape;
  const rows = new Float32Array(n * c * h);
  const cols = new Float32Array(n * c * w);
  const acc = { r: new Float64Array(n * c * h), c: new Float64Array(n * c * w) };
  for (let p = 0; p < n * c; p++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        acc.r[p * h + y] += v[(p * h + y) * w + x];
        acc.c[p * w + x] += v[(p * h + y) * w + x];
      }
  rows.set(acc.r);
  cols.set(acc.c);
  const idx = Int32Array.from({ length: 64 }, (_, i) => (i * 7919) % v.length);
  npyOut(dir, `${name}__rowsum`, [n, c, h], rows);
  npyOut(dir, `${name}__colsum`, [n, c, w], cols);
  npyOut(dir, `${name}__idx`, [idx.length], idx);
  npyOut(
    dir,
    `${name}__vals`,
    [idx.length],
    Float32Array.from(idx, (i) => v[i]),
  );
}

async function buildPreprocess(root: string): Promise<void> {
  const dir = path.join(root, 'preprocess');
  const cot = randn(3 * CROP * CROP, 41);
  npyOut(dir, `cotangent_${CROP}`, [1, 3, CROP, CROP], cot);
  const cotT = nhwcTensor({ shape: [1, 3, CROP, CROP], dtype: 'float32', data: cot });
  const vjp = async (fn: (x: tf.Tensor4D) => tf.Tensor4D, x: tf.Tensor4D, dy: tf.Tensor4D) =>
    await nchwValues(tf.grad((xi: tf.Tensor) => fn(xi as tf.Tensor4D))(x, dy));
  // h80w48: resized to 53x32 (int(32*80/48)), crop top round(10.5) = 10; stored in full.
  // sq40: resized 40 -> 32; stored as summaries.
  const inputs: [string, number, number, boolean][] = [
    ['h80w48', 80, 48, true],
    ['sq40', 40, 40, false],
  ];
  for (const [k, [tag, h, w, full]] of inputs.entries()) {
    const data = uniform(3 * h * w, 42 + k);
    npyOut(dir, `${tag}_input`, [1, 3, h, w], data);
    const x = nhwcTensor({ shape: [1, 3, h, w], dtype: 'float32', data });
    const out = await nchwValues(clipPreprocess(x, CROP));
    const g = await vjp((xi) => clipPreprocess(xi, CROP), x, cotT);
    if (full) {
      npyOut(dir, `${tag}_output`, [1, 3, CROP, CROP], out);
      npyOut(dir, `${tag}_vjp`, [1, 3, h, w], g);
    } else {
      summary(dir, `${tag}_output`, out, [1, 3, CROP, CROP]);
      summary(dir, `${tag}_vjp`, g, [1, 3, h, w]);
    }
  }
  // bilinear 40 -> 28 of the sq40 input; the cotangent cropped to 28x28 (repeat factor ceil(28/32) = 1)
  const sq = nhwcTensor({ shape: [1, 3, 40, 40], dtype: 'float32', data: uniform(3 * 40 * 40, 43) });
  const dy = tf.slice(cotT, [0, 0, 0, 0], [1, 28, 28, 3]);
  summary(dir, 'bilinear_40_to_28_output', await nchwValues(resizeBilinearAA(sq, 28, 28)), [1, 3, 28, 28]);
  summary(dir, 'bilinear_40_to_28_vjp', await vjp((xi) => resizeBilinearAA(xi, 28, 28), sq, dy), [1, 3, 40, 40]);
  fs.writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({
      fixture: 'preprocess',
      checks: { cases: { h80w48: {}, sq40: {}, bilinear_40_to_28: { input_hw: [40, 40], output_hw: [28, 28] } } },
    }),
  );
}

export async function buildClipSecondLayout(root: string): Promise<void> {
  await useBackend('cpu', { quiet: true });
  tf.engine().startScope();
  await buildClip(root);
  await buildPreprocess(root);
  tf.engine().endScope();
}
