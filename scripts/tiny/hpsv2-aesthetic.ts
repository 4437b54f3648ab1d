// The tiny HPSv2 and LAION aesthetic head, in the layouts of the real downloads:
//   root/xswu/HPSv2/HPS_v2.1_compressed.pt              torch.save zip of {'state_dict': ...} with open_clip key names
//                                                       (fp16 storages), plus open_clip_config.json describing the tiny
//                                                       architecture (the real repo has none: reno falls back to
//                                                       configs/open_clip/ViT-H-14.json there)
//   root/camenduru/improved-aesthetic-predictor/sac+logos+ava1-l14-linearMSE.pth
//                                                       torch.save zip of an OrderedDict layers.{0,2,4,6,7}.{weight,bias}
//                                                       (storages marked cuda:0 like the released file), smaller hidden
//                                                       sizes than the real 1024-128-64-16 head
// The tiny CLIP ViT-L/14 the head reads (root/openai/clip-vit-large-patch14) and the tokenizer files
// (root/laion/CLIP-ViT-H-14-laion2B-s32B-b79K) are written by scripts/tiny/clip-rewards.ts; the head's input size
// follows that model's projection_dim when its config.json is already there, else the real 768.
// Note: the tiny head is not the released file, so `reno models verify` reports its pinned sha256 as different.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AestheticHead } from '../../src/models/aesthetic-head.js';
import { openClipConfig } from '../../src/models/openclip/config.js';
import { OpenClipModel } from '../../src/models/openclip/model.js';
import { randomStateDict } from '../../src/weights/random.js';
import { SEED, writeJson } from './common.js';
import { writeTorchZip } from './torch-zip-writer.js';

/** A tiny open_clip CLIP with the real input geometry (224 px; 32 px patches: 7x7) and the real 49408-token vocabulary. */
export const TINY_OPEN_CLIP = {
  embed_dim: 16,
  vision_cfg: { image_size: 224, layers: 2, width: 16, head_width: 8, patch_size: 32, mlp_ratio: 2.0 },
  text_cfg: { context_length: 77, vocab_size: 49408, width: 16, heads: 2, layers: 2, mlp_ratio: 2.0 },
};

/** Hidden sizes of the tiny aesthetic head (the real one: 1024, 128, 64, 16, then 1). */
export const TINY_HEAD_HIDDEN = [32, 16, 8, 4];

/** The projection_dim of the tiny ViT-L/14 under `root` when it is already written, else the real model's 768. */
export function aestheticEmbedDim(root: string): number {
  const cfg = path.join(root, 'openai', 'clip-vit-large-patch14', 'config.json');
  if (!fs.existsSync(cfg)) return 768;
  const dim = (JSON.parse(fs.readFileSync(cfg, 'utf8')) as { projection_dim?: unknown }).projection_dim;
  return typeof dim === 'number' && Number.isInteger(dim) ? dim : 512; // transformers' CLIPConfig default
}

/** Seeded random HPSv2-layout checkpoint for an open_clip config (exp(logit_scale) = 100, as trained). */
export function writeTinyHpsv2(dir: string, cfg: Record<string, unknown>, seed: number, dtype: 'F32' | 'F16' = 'F16'): void {
  writeJson(path.join(dir, 'open_clip_config.json'), cfg);
  const sd = randomStateDict(new OpenClipModel(openClipConfig(cfg, `${dir}/open_clip_config.json`)), seed);
  sd.set('logit_scale', { shape: [], data: Float32Array.of(Math.log(100)) });
  writeTorchZip(path.join(dir, 'HPS_v2.1_compressed.pt'), sd, { wrapper: 'state_dict', dtype, root: 'HPS_v2.1_compressed' });
}

/** Seeded random aesthetic head with the released file's key names; the last bias puts scores near 5. */
export function writeTinyAestheticHead(file: string, inFeatures: number, seed: number, hidden = TINY_HEAD_HIDDEN): void {
  const sd = randomStateDict(new AestheticHead([inFeatures, ...hidden, 1]), seed);
  sd.set('layers.7.bias', { shape: [1], data: Float32Array.of(5) });
  writeTorchZip(file, sd, { location: 'cuda:0' });
}

export function writeTinyHpsv2Aesthetic(root: string, _assetsDir: string): void {
  writeTinyHpsv2(path.join(root, 'xswu', 'HPSv2'), TINY_OPEN_CLIP, SEED + 201);
  const headFile = path.join(root, 'camenduru', 'improved-aesthetic-predictor', 'sac+logos+ava1-l14-linearMSE.pth');
  writeTinyAestheticHead(headFile, aestheticEmbedDim(root), SEED + 202);
}
