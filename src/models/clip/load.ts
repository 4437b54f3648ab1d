// Loading a Hugging Face CLIPModel folder (config.json + weights with HF key names) and its CLIP BPE tokenizer, as
// ReNO's CLIP-family rewards do with CLIPModel.from_pretrained / AutoProcessor.from_pretrained
// (ReNO rewards/pickscore.py, rewards/clip.py). The text side is tokenized like transformers' CLIPTokenizer called
// with padding=True, max_length=77, truncation=True.
import * as tf from '../../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonFile } from '../../config/json.js';
import { WeightsError } from '../../errors.js';
import { clipConfig } from './config.js';
import { ClipModel } from './model.js';
import { CLIP_MODES, ClipTokenizer } from '../../tokenizers/clip-bpe.js';
import { loadModule } from '../../weights/load.js';
import { openWeights } from '../../weights/open.js';
import { openClipAsHf } from './openclip-keys.js';

/** Weight files of a CLIPModel folder, in order of preference (safetensors needs no pickle reader). */
export const CLIP_WEIGHT_FILES = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'open_clip_pytorch_model.bin'];

export function clipWeightsFile(dir: string): string {
  for (const f of CLIP_WEIGHT_FILES) {
    const p = path.join(dir, f);
    if (fs.existsSync(p)) return p;
  }
  throw new WeightsError(`no CLIP weights in ${dir} (looked for ${CLIP_WEIGHT_FILES.join(', ')})`);
}

/** One loaded CLIPModel per folder, shared by every holder (PickScore's reward and the embedding personal model). */
const shared = new Map<string, { model: ClipModel; refs: number }>();

/**
 * The CLIPModel of a folder, loaded once while anyone holds it: PickScore (or the clip reward) and the embedding
 * personal model on the same tower share one copy of the weights (3.9 GB for ViT-H/14) instead of two. Each
 * acquire is matched by one release(); the last one frees the weights.
 */
export function acquireClipModel(dir: string): { model: ClipModel; release: () => void } {
  const key = path.resolve(dir);
  let e = shared.get(key);
  if (!e) {
    e = { model: loadClipModel(dir), refs: 0 };
    shared.set(key, e);
  }
  e.refs++;
  const entry = e;
  let released = false;
  return {
    model: entry.model,
    release: () => {
      if (released) return;
      released = true;
      if (--entry.refs === 0) {
        shared.delete(key);
        entry.model.dispose();
      }
    },
  };
}

/** CLIPModel from a folder: config.json and the first weights file of CLIP_WEIGHT_FILES (strict key check). */
export function loadClipModel(dir: string): ClipModel {
  const cfgFile = path.join(dir, 'config.json');
  const model = new ClipModel(clipConfig(readJsonFile(cfgFile, 'CLIP config'), cfgFile));
  const file = clipWeightsFile(dir);
  const raw = openWeights(file);
  // open_clip's own checkpoint (fused in_proj, raw projections) is read through a renaming view in HF names
  const src = path.basename(file).startsWith('open_clip') ? openClipAsHf(raw) : raw;
  try {
    // older transformers saved the position_ids buffers, older open_clip its causal attn_mask
    loadModule(model, src, { ignore: (k) => k.endsWith('position_ids') || k === 'attn_mask' });
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    src.close();
  }
  return model;
}

export interface ClipTokens {
  ids: tf.Tensor2D; // [n, L] int32
  mask: tf.Tensor2D; // [n, L] int32
}

/**
 * transformers' CLIPTokenizer(prompts, padding=True, max_length, truncation=True): [bos, bpe..., eos] cut to
 * max_length with eos kept, padded with eos (49407) to the longest prompt, attention mask 1 on real tokens.
 */
export function tokenizeForClip(tok: ClipTokenizer, prompts: readonly string[], maxLength = 77): ClipTokens {
  const b = tok.tokenize(prompts, { ...CLIP_MODES.hfDefault, length: maxLength });
  let len = 0;
  for (let r = 0; r < b.shape[0]; r++) {
    let n = 0;
    for (let j = 0; j < maxLength; j++) n += b.mask[r * maxLength + j];
    len = Math.max(len, n);
  }
  const ids = new Int32Array(b.shape[0] * len);
  const mask = new Int32Array(b.shape[0] * len);
  for (let r = 0; r < b.shape[0]; r++) {
    ids.set(b.ids.subarray(r * maxLength, r * maxLength + len), r * len);
    mask.set(b.mask.subarray(r * maxLength, r * maxLength + len), r * len);
  }
  return { ids: tf.tensor2d(ids, [b.shape[0], len], 'int32'), mask: tf.tensor2d(mask, [b.shape[0], len], 'int32') };
}

/** The tokenizer of a CLIP model folder (vocab.json + merges.txt + special_tokens_map.json). */
export function loadClipTokenizer(dir: string): ClipTokenizer {
  return ClipTokenizer.fromFolder(dir);
}
