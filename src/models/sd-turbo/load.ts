// Loading SD-Turbo's parts from diffusers component folders (config.json + weights by their original key names).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonFile } from '../../config/json.js';
import { WeightsError } from '../../errors.js';
import { clipTextModelConfig } from '../clip/config.js';
import { ClipTextModel } from '../clip/text.js';
import type { Module } from '../../nn/module.js';
import { loadModule, type LoadOptions } from '../../weights/load.js';
import { openSafetensors } from '../../weights/safetensors.js';
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

function loadInto<M extends Module>(m: M, file: string, opts: LoadOptions): M {
  const src = openSafetensors(file);
  try {
    loadModule(m, src, opts);
  } catch (e) {
    m.dispose();
    throw e;
  } finally {
    src.close();
  }
  return m;
}

/** CLIPTextModel from text_encoder/ (keys text_model.*; the position_ids buffer of older files is ignored). */
export function loadTextEncoder(dir: string): ClipTextModel {
  const cfg = path.join(dir, 'config.json');
  const m = new ClipTextModel(clipTextModelConfig(readJsonFile(cfg, 'text encoder config'), cfg));
  return loadInto(m, componentWeights(dir, 'model'), { ignore: (k) => k.endsWith('position_ids') });
}

export function loadUnet(dir: string): UNet2DConditionModel {
  const m = new UNet2DConditionModel(readUnetConfig(path.join(dir, 'config.json')));
  return loadInto(m, componentWeights(dir, 'diffusion_pytorch_model'), {});
}

/** AutoencoderKL from vae/; without the encoder unless asked (legacy attention names are renamed). */
export function loadVae(dir: string, withEncoder = false): AutoencoderKL {
  const m = new AutoencoderKL(readVaeConfig(path.join(dir, 'config.json')), withEncoder);
  return loadInto(m, componentWeights(dir, 'diffusion_pytorch_model'), {
    rename: renameLegacyVaeKey,
    ignore: (k) => !withEncoder && isEncoderKey(k),
  });
}
