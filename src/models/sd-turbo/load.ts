// Loading SD-Turbo's parts from diffusers component folders (config.json + weights by their original key names), or
// with their weights from one single-file checkpoint in the original SD layout (src/weights/single-file.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonFile } from '../../config/json.js';
import { WeightsError } from '../../errors.js';
import { clipTextModelConfig } from '../clip/config.js';
import { ClipTextModel } from '../clip/text.js';
import type { Module } from '../../nn/module.js';
import { loadModule, type LoadOptions } from '../../weights/load.js';
import { openSafetensors } from '../../weights/safetensors.js';
import { openSingleFile, type SingleFile, type SingleFileLayout } from '../../weights/single-file.js';
import type { TensorSource } from '../../weights/source.js';
import { readUnetConfig, readVaeConfig } from './config.js';
import { UNet2DConditionModel } from './unet.js';
import { AutoencoderKL, isEncoderKey, renameLegacyVaeKey } from './vae.js';

/** The weights file of a component folder: full precision first, then fp16, then a sharded index. */
export function componentWeights(dir: string, base: string): string {
  const candidates = [`${base}.safetensors`, `${base}.fp16.safetensors`, `${base}.safetensors.index.json`, `${base}.fp16.safetensors.index.json`];
  for (const c of candidates) {
    const p = path.join(dir, c);
    if (fs.existsSync(p)) return p;
  }
  throw new WeightsError(`no weights in ${dir} (looked for ${candidates.join(', ')})`);
}

/** Load from a weights file (opened and closed here) or from a source the caller owns (a single file's component). */
function loadInto<M extends Module>(m: M, from: string | TensorSource, opts: LoadOptions): M {
  const src = typeof from === 'string' ? openSafetensors(from) : from;
  try {
    loadModule(m, src, opts);
  } catch (e) {
    m.dispose();
    throw e;
  } finally {
    if (typeof from === 'string') src.close();
  }
  return m;
}

/** The index arithmetic of the original layout, from the components' configs in a diffusers folder. */
export function singleFileLayout(dir: string): SingleFileLayout {
  const unet = readUnetConfig(path.join(dir, 'unet', 'config.json'));
  const vae = readVaeConfig(path.join(dir, 'vae', 'config.json'));
  const cfg = path.join(dir, 'text_encoder', 'config.json');
  const text = clipTextModelConfig(readJsonFile(cfg, 'text encoder config'), cfg);
  return {
    unetLayersPerBlock: unet.layersPerBlock,
    unetDownAttention: unet.downBlockTypes.map((t) => t === 'CrossAttnDownBlock2D'),
    unetUpAttention: unet.upBlockTypes.map((t) => t === 'CrossAttnUpBlock2D'),
    vaeLevels: vae.blockOutChannels.length,
    textLayers: text.numLayers,
  };
}

/** A single-file checkpoint (e.g. sd_turbo.safetensors) read with the configs of the diffusers folder `dir`. */
export function openCheckpointFile(file: string, dir: string): SingleFile {
  if (!fs.existsSync(file)) throw new WeightsError(`--model-file: ${file} not found`);
  return openSingleFile(file, singleFileLayout(dir));
}

/** CLIPTextModel from text_encoder/ (keys text_model.*; the position_ids buffer of older files is ignored). */
export function loadTextEncoder(dir: string, src?: TensorSource): ClipTextModel {
  const cfg = path.join(dir, 'config.json');
  const m = new ClipTextModel(clipTextModelConfig(readJsonFile(cfg, 'text encoder config'), cfg));
  return loadInto(m, src ?? componentWeights(dir, 'model'), { ignore: (k) => k.endsWith('position_ids') });
}

export function loadUnet(dir: string, src?: TensorSource): UNet2DConditionModel {
  const m = new UNet2DConditionModel(readUnetConfig(path.join(dir, 'config.json')));
  return loadInto(m, src ?? componentWeights(dir, 'diffusion_pytorch_model'), {});
}

/** AutoencoderKL from vae/; without the encoder unless asked (legacy attention names are renamed). */
export function loadVae(dir: string, withEncoder = false, src?: TensorSource): AutoencoderKL {
  const m = new AutoencoderKL(readVaeConfig(path.join(dir, 'config.json')), withEncoder);
  return loadInto(m, src ?? componentWeights(dir, 'diffusion_pytorch_model'), {
    rename: renameLegacyVaeKey,
    ignore: (k) => !withEncoder && isEncoderKey(k),
  });
}
