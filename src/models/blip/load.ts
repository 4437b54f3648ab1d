// Loading transformers' BLIP text models from a save_pretrained folder (config.json + model.safetensors or
// pytorch_model.bin): BlipTextModel (keys embeddings.*, encoder.*, pooler.*) and BlipTextLMHeadModel (bert.*, cls.*).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonFile } from '../../config/json.js';
import { WeightsError } from '../../errors.js';
import type { Module } from '../../nn/module.js';
import { loadModule } from '../../weights/load.js';
import { openWeights } from '../../weights/open.js';
import type { TensorSource } from '../../weights/source.js';
import { blipTextConfig } from './config.js';
import { BlipTextLMHeadModel } from './lm-head.js';
import { BertModel } from './med.js';

const WEIGHT_FILES = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin'];

function weightsIn(dir: string): string {
  for (const f of WEIGHT_FILES) if (fs.existsSync(path.join(dir, f))) return path.join(dir, f);
  throw new WeightsError(`no weights in ${dir} (looked for ${WEIGHT_FILES.join(', ')})`);
}

/** BlipTextModel(config, add_pooling_layer): the pooler is loaded when the file has it (or when asked). */
export function loadBlipText(dir: string, opts: { pooler?: boolean } = {}): BertModel {
  const config = blipTextConfig(readJsonFile(path.join(dir, 'config.json')), path.join(dir, 'config.json'));
  const source = openWeights(weightsIn(dir));
  try {
    const pooler = opts.pooler ?? source.keys().some((k) => k.startsWith('pooler.'));
    const model = new BertModel(config, pooler);
    loadOrDispose(model, source, (k) => k.endsWith('position_ids'));
    return model;
  } finally {
    source.close();
  }
}

/**
 * Keys a BlipTextLMHeadModel file may hold besides the parameters: the position_ids buffer, a pooler (the LM model
 * has none), and the tied decoder
 * (cls.predictions.decoder.{weight,bias}) that older torch .bin files repeat; reno reads the shared names instead.
 */
export function ignoredLmKey(k: string): boolean {
  if (k.endsWith('position_ids') || k.startsWith('bert.pooler.')) return true; // _keys_to_ignore_on_load_unexpected = ["pooler"]
  return k === 'cls.predictions.decoder.weight' || k === 'cls.predictions.decoder.bias';
}

/** BlipTextLMHeadModel: the decoder weight is tied to bert.embeddings.word_embeddings.weight at load. */
export function loadBlipTextLm(dir: string): BlipTextLMHeadModel {
  const config = blipTextConfig(readJsonFile(path.join(dir, 'config.json')), path.join(dir, 'config.json'));
  const source = openWeights(weightsIn(dir));
  try {
    const model = new BlipTextLMHeadModel(config);
    loadOrDispose(model, source, ignoredLmKey);
    return model;
  } finally {
    source.close();
  }
}

function loadOrDispose(model: Module, source: TensorSource, ignore: (k: string) => boolean): void {
  try {
    loadModule(model, source, { ignore });
  } catch (e) {
    model.dispose();
    throw e;
  }
}
