// A second fixture root for the openclip_hpsv2 and aesthetic_laion cases, with other sizes than the upstream
// fixtures: non-default patch grid and head widths, 3 vision and 1 text layers, a 20-token context, batch 3 images
// and 2 prompts, a 20-d aesthetic head kept inside the case folder. Random weights (randomStateDict), saved both as a
// torch.save zip of {'state_dict': ...} (scripts/tiny/torch-zip-writer.ts) and as safetensors; the references are
// computed by reno on the pure-JS cpu backend. (The upstream fixtures prove the port; this root proves that the
// cases read every size from the fixture.)
import * as tf from '../../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeTorchZip } from '../../scripts/tiny/torch-zip-writer.js';
import { useBackend } from '../../src/runtime/backend.js';
import { AestheticHead, loadAestheticHead } from '../../src/models/aesthetic-head.js';
import { openClipConfig } from '../../src/models/openclip/config.js';
import { l2Normalize, loadOpenClip, OpenClipModel } from '../../src/models/openclip/model.js';
import { gaussian } from '../../src/optimize/noise.js';
import { nchwValues, nhwcTensor } from '../../src/parity/tensors.js';
import { writeNpy } from '../../src/weights/npy.js';
import { randomStateDict } from '../../src/weights/random.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';

export const OPEN_CLIP_2 = {
  embed_dim: 12,
  vision_cfg: { image_size: 30, layers: 3, width: 24, head_width: 6, patch_size: 6, mlp_ratio: 3.0 },
  text_cfg: { context_length: 20, vocab_size: 64, width: 20, heads: 5, layers: 1, mlp_ratio: 2.0 },
};
export const HEAD_SIZES_2 = [20, 12, 8, 6, 4, 1];
const B = 3; // images
const N = 2; // prompts

function npyOut(dir: string, name: string, shape: number[], data: Float32Array | Int32Array): void {
  fs.mkdirSync(path.join(dir, 'io'), { recursive: true });
  writeNpy(path.join(dir, 'io', `${name}.npy`), shape, data);
}

async function openclip(dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'open_clip_config.json'), JSON.stringify(OPEN_CLIP_2));
  const cfg = openClipConfig(OPEN_CLIP_2, 'second layout');
  const sd = randomStateDict(new OpenClipModel(cfg), 31);
  sd.set('logit_scale', { shape: [], data: Float32Array.of(Math.log(30)) });
  writeTorchZip(path.join(dir, 'open_clip_model.pt'), sd, { wrapper: 'state_dict' });
  writeSafetensors(path.join(dir, 'open_clip_model.safetensors'), sd, { format: 'pt' });

  const ctxLen = OPEN_CLIP_2.text_cfg.context_length;
  const vocab = OPEN_CLIP_2.text_cfg.vocab_size;
  const ids = new Int32Array(N * ctxLen);
  const lens = [5, 11];
  for (let r = 0; r < N; r++) {
    ids[r * ctxLen] = vocab - 2; // SOT
    for (let j = 1; j < lens[r] - 1; j++) ids[r * ctxLen + j] = 1 + ((r * 17 + j * 29) % (vocab - 3));
    ids[r * ctxLen + lens[r] - 1] = vocab - 1; // EOT, the highest id
  }
  const s = OPEN_CLIP_2.vision_cfg.image_size;
  const image = gaussian(B * 3 * s * s, 32);
  npyOut(dir, 'image', [B, 3, s, s], image);
  npyOut(dir, 'text', [N, ctxLen], ids);

  const { model } = loadOpenClip(path.join(dir, 'open_clip_model.safetensors'), cfg);
  const x = nhwcTensor({ shape: [B, 3, s, s], dtype: 'float32', data: image });
  const vis = model.encodeImageFull(x);
  const txt = model.encodeText(tf.tensor2d(ids, [N, ctxLen], 'int32'));
  const img = l2Normalize(vis.features);
  const text = l2Normalize(txt.features);
  const hps = tf.matMul(img, text, false, true);
  const scale = tf.exp(model.logit_scale.v);
  const k = Math.min(B, N);
  const grad = tf.grad((xx: tf.Tensor) => {
    const f = l2Normalize(model.encodeImage(xx as tf.Tensor4D));
    return tf.sum(tf.mul(tf.slice(f, [0, 0], [k, -1]), tf.slice(text, [0, 0], [k, -1])));
  })(x);
  const w = OPEN_CLIP_2.vision_cfg.width;
  const tw = OPEN_CLIP_2.text_cfg.width;
  const e = OPEN_CLIP_2.embed_dim;
  const tokens = (s / OPEN_CLIP_2.vision_cfg.patch_size) ** 2 + 1;
  const f32 = (t: tf.Tensor) => t.dataSync() as Float32Array;
  npyOut(dir, 'visual_ln_post', [B, tokens, w], f32(vis.tokens));
  npyOut(dir, 'text_ln_final', [N, ctxLen, tw], f32(txt.tokens));
  npyOut(dir, 'image_features_raw', [B, e], f32(vis.features));
  npyOut(dir, 'text_features_raw', [N, e], f32(txt.features));
  npyOut(dir, 'image_features', [B, e], f32(img));
  npyOut(dir, 'text_features', [N, e], f32(text));
  npyOut(dir, 'logit_scale_exp', [1], f32(scale));
  npyOut(dir, 'logits_per_image', [B, N], f32(tf.mul(scale, hps)));
  npyOut(dir, 'hps_logits', [B, N], f32(hps));
  npyOut(dir, 'grad_image_of_hps_pair_sum', [B, 3, s, s], await nchwValues(grad));
  model.dispose();
}

function aesthetic(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'head.pth');
  writeTorchZip(file, randomStateDict(new AestheticHead(HEAD_SIZES_2), 33), { location: 'cuda:0' });
  const head = loadAestheticHead(file);
  const d = HEAD_SIZES_2[0];
  const emb = tf.tidy(() => l2Normalize(tf.tensor2d(gaussian(B * d, 34), [B, d])));
  npyOut(dir, 'embeddings', [B, d], emb.dataSync() as Float32Array);
  npyOut(dir, 'score', [B, 1], head.forward(emb).dataSync() as Float32Array);
  npyOut(
    dir,
    'grad_embeddings',
    [B, d],
    tf
      .grad((x: tf.Tensor) => tf.sum(head.forward(x)))(emb)
      .dataSync() as Float32Array,
  );
  head.dispose();
}

export async function buildHpsv2AestheticSecondLayout(root: string): Promise<void> {
  await useBackend('cpu', { quiet: true });
  tf.engine().startScope(); // frees every tensor made while building
  try {
    await openclip(path.join(root, 'openclip_hpsv2'));
    aesthetic(path.join(root, 'aesthetic_laion'));
  } finally {
    tf.engine().endScope();
  }
}
