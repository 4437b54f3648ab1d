// A preference checkpoint is a folder:
//   config.json          the backbone (registry name, repo, the folder it was trained from, sizes), prototype count,
//                        LoRA settings, vision training, prompt use, n_ref, the token template (./layout.ts), and the
//                        training arguments with the step reached
//   model.safetensors    the trained tensors only, float32, PyTorch layout:
//                          prototypes                                            [Lp, D]
//                          model.text_model.layers.N.self_attn.q_proj.lora_A.weight  [r, in]   (PEFT names)
//                          model.text_model.layers.N.self_attn.q_proj.lora_B.weight  [out, r]
//                          model.vision_model.* / model.connector.*                  (with --train-vision)
//                          model.text_model.layers.* / .norm / lm_head.weight          (with --train-text)
//   optimizer.safetensors  AdamW moments exp_avg.<key> / exp_avg_sq.<key> (tfjs layout) and the step (metadata)
// The three files carry the same "stage" and "step" in their metadata, so a resume can tell a torn save.
import * as tf from '../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Fields, readJsonFile, type Json } from '../config/json.js';
import { ConfigError, WeightsError } from '../errors.js';
import { makeDirs, writeFileAtomic } from '../util/files.js';
import { fromTfLayout, toTfLayout } from '../weights/layout.js';
import { SafetensorsFile, writeSafetensors } from '../weights/safetensors.js';
import type { TensorSource } from '../weights/source.js';
import { DEFAULT_TEMPLATE, type PreferenceTemplate } from './sequence.js';
import { checkLoraOptions, textParams, visionParams } from './lora.js';
import { PreferenceModel, type PreferenceConfig } from './model.js';

export const CHECKPOINT_FORMAT = 'reno-preference';
export const CHECKPOINT_VERSION = 1;
export const BACKBONE_MODEL = 'smolvlm';

/** Where training stands: stage 1 (model + prototypes) or 2 (prototypes only), optimizer steps done in that stage. */
export interface TrainingState {
  stage: 1 | 2;
  step: number;
}

/** PyTorch layout of each trained key: prototypes as is, LoRA matrices transposed, vision params by their Param. */
function layoutOf(model: PreferenceModel): Map<string, 'none' | 'linear' | 'conv2d'> {
  const m = new Map<string, 'none' | 'linear' | 'conv2d'>();
  for (const k of model.trainedTensors().keys()) m.set(k, k.includes('.lora_') ? 'linear' : 'none');
  if (model.config.trainVision) for (const [k, p] of visionParams(model.backbone)) m.set(k, p.layout);
  if (model.config.trainText) for (const [k, p] of textParams(model.backbone)) m.set(k, p.layout);
  return m;
}

function torchShape(layout: 'none' | 'linear' | 'conv2d', tfShape: number[]): number[] {
  if (layout === 'linear') return [tfShape[1], tfShape[0]];
  if (layout === 'conv2d') return [tfShape[3], tfShape[2], tfShape[0], tfShape[1]];
  return tfShape;
}

export function preferenceConfigJson(model: PreferenceModel, training: Record<string, unknown>): Json {
  const c = model.config;
  const bc = model.backbone.config;
  return {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    backbone: {
      model: BACKBONE_MODEL,
      repo: 'HuggingFaceTB/SmolVLM-256M-Instruct',
      dir: model.backboneDir,
      hidden_size: bc.text.hiddenSize,
      vocab_size: bc.text.vocabSize,
      image_size: bc.vision.imageSize,
      image_seq_len: bc.imageSeqLen,
    },
    prototypes: c.prototypes,
    lora: c.lora,
    train_vision: c.trainVision,
    train_text: c.trainText,
    use_prompt: c.usePrompt,
    n_ref: c.nRef,
    template: model.layout.describe(),
    training,
  };
}

/** Write config.json and model.safetensors (and optimizer.safetensors when given) into `dir`. */
export async function saveCheckpoint(
  dir: string,
  model: PreferenceModel,
  o: { training: Record<string, unknown>; state: TrainingState; optimizer?: Map<string, { shape: number[]; data: Float32Array }> },
): Promise<void> {
  makeDirs(dir);
  const meta = { format: CHECKPOINT_FORMAT, stage: String(o.state.stage), step: String(o.state.step) };
  const layouts = layoutOf(model);
  const tensors: [string, { shape: number[]; data: Float32Array }][] = [];
  for (const [k, t] of model.trainedTensors()) {
    const layout = layouts.get(k) ?? 'none';
    const shape = torchShape(layout, t.shape);
    tensors.push([k, { shape, data: fromTfLayout(layout, shape, (await t.data()) as Float32Array) }]); // asynchronous: WebGPU has no synchronous read
  }
  if (o.optimizer) writeSafetensors(path.join(dir, 'optimizer.safetensors'), o.optimizer, { ...meta, layout: 'tfjs' });
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, meta);
  writeFileAtomic(
    path.join(dir, 'config.json'),
    JSON.stringify(preferenceConfigJson(model, { ...o.training, stage: o.state.stage, step: o.state.step }), null, 2) + '\n',
  );
}

/** The model settings stored in a checkpoint's config.json. */
export function readPreferenceConfig(dir: string): { config: PreferenceConfig; json: Json; file: string } {
  const file = path.join(dir, 'config.json');
  const json = readJsonFile(file, 'preference checkpoint config');
  const f = new Fields(json, file);
  if (f.str('format', '') !== CHECKPOINT_FORMAT)
    throw new ConfigError(`${file}: not a reno preference checkpoint ("format" must be "${CHECKPOINT_FORMAT}")`);
  let lora: PreferenceConfig['lora'] = null;
  if (f.has('lora')) {
    const l = f.sub('lora');
    lora = { rank: l.int('rank'), alpha: l.num('alpha'), targets: l.strs('targets') };
    checkLoraOptions(lora);
  }
  const t = f.sub('template');
  const template: PreferenceTemplate = {
    bos: t.str('bos', DEFAULT_TEMPLATE.bos),
    entry: t.str('entry', DEFAULT_TEMPLATE.entry),
    entryNoPrompt: t.str('entryNoPrompt', DEFAULT_TEMPLATE.entryNoPrompt),
    like: t.str('like', DEFAULT_TEMPLATE.like),
    dislike: t.str('dislike', DEFAULT_TEMPLATE.dislike),
    promptMaxTokens: t.int('promptMaxTokens', DEFAULT_TEMPLATE.promptMaxTokens),
  };
  const config: PreferenceConfig = {
    prototypes: f.int('prototypes'),
    lora,
    trainVision: f.bool('train_vision', false),
    trainText: f.bool('train_text', false),
    usePrompt: f.bool('use_prompt', true),
    nRef: f.int('n_ref'),
    template,
  };
  return { config, json, file };
}

/** Copy the tensors of a model.safetensors into the model (strict: every trained key present, shapes equal, no extras). */
export function loadTrainedTensors(model: PreferenceModel, source: TensorSource): void {
  const layouts = layoutOf(model);
  const want = model.trainedTensors();
  const errors: string[] = [];
  for (const k of source.keys()) if (!want.has(k)) errors.push(`unexpected key ${k}`);
  for (const [k, t] of want) {
    const info = source.info(k);
    const layout = layouts.get(k) ?? 'none';
    const shape = torchShape(layout, t.shape);
    if (!info) errors.push(`missing key ${k} [${shape}]`);
    else if (info.shape.join() !== shape.join()) errors.push(`${k}: expected [${shape}], found [${info.shape}]`);
  }
  if (errors.length) throw new WeightsError(`${source.path}: does not match the preference model in config.json:\n  ${errors.join('\n  ')}`);
  const replace = new Map<string, tf.Tensor>();
  for (const [k, t] of want) {
    const layout = layouts.get(k) ?? 'none';
    replace.set(k, tf.tensor(toTfLayout(layout, torchShape(layout, t.shape), source.read(k)), t.shape));
  }
  setTrainedTensors(model, replace);
}

/** Put new values into the trained slots (assigning to variables, replacing plain tensors). Takes ownership. */
export function setTrainedTensors(model: PreferenceModel, values: Map<string, tf.Tensor>): void {
  const put = (old: tf.Tensor, v: tf.Tensor): tf.Tensor => {
    if (old instanceof tf.Variable) {
      old.assign(v);
      v.dispose();
      return old;
    }
    old.dispose();
    return v;
  };
  const get = (k: string) => values.get(k)!;
  if (model.prototypes) model.prototypes = put(model.prototypes, get('prototypes')) as tf.Tensor2D;
  for (const a of model.adapters) {
    a.a = put(a.a, get(a.aKey)) as tf.Tensor2D;
    a.b = put(a.b, get(a.bKey)) as tf.Tensor2D;
  }
  if (model.config.trainVision) for (const [k, p] of visionParams(model.backbone)) p.value = put(p.v, get(k));
  if (model.config.trainText) for (const [k, p] of textParams(model.backbone)) p.value = put(p.v, get(k));
}

/** The checkpoint's metadata stage/step (model.safetensors). */
export function checkpointState(dir: string, file = 'model.safetensors'): TrainingState {
  const src = new SafetensorsFile(path.join(dir, file));
  try {
    const meta = src.metadata;
    const stage = Number(meta.stage);
    const step = Number(meta.step);
    if (!(stage === 1 || stage === 2) || !Number.isInteger(step)) throw new WeightsError(`${src.path}: no stage/step in its metadata`);
    return { stage, step };
  } finally {
    src.close();
  }
}

/** The backbone folder a checkpoint's config.json recorded, resolved against the checkpoint; null if none. */
export function recordedBackboneDir(dir: string, json: Json = readPreferenceConfig(dir).json): string | null {
  const rec = (json.backbone as Json | undefined)?.dir;
  return typeof rec === 'string' && rec ? path.resolve(dir, rec) : null; // a relative path is relative to the checkpoint
}

/**
 * Load a preference checkpoint onto the backbone folder `backboneDir` (default: the folder in config.json).
 * `trainable` gives tf.Variables (for --resume); otherwise plain tensors (scoring, the personal reward).
 */
export function loadPreferenceModel(dir: string, o: { backboneDir?: string; trainable?: boolean } = {}): PreferenceModel {
  if (!fs.existsSync(path.join(dir, 'config.json'))) throw new WeightsError(`not a preference checkpoint (no config.json): ${dir}`);
  const { config, json, file } = readPreferenceConfig(dir);
  const backboneDir = o.backboneDir ?? recordedBackboneDir(dir, json);
  if (!backboneDir) throw new ConfigError(`${file}: no backbone folder given and none recorded`);
  const model = PreferenceModel.create(backboneDir, config, { trainable: o.trainable });
  try {
    const bb = new Fields(json, file).sub('backbone');
    const d = bb.int('hidden_size', model.hiddenSize);
    if (d !== model.hiddenSize)
      throw new WeightsError(`${file}: trained on a backbone with hidden size ${d}, but ${backboneDir} has ${model.hiddenSize}`);
    const src = new SafetensorsFile(path.join(dir, 'model.safetensors'));
    try {
      loadTrainedTensors(model, src);
    } finally {
      src.close();
    }
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}
