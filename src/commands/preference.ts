// `reno preference synth` (a procedural taste world in the preference dataset format) and `reno preference train`
// (the seed paper's two-stage training of the prototype preference model on a SmolVLM backbone).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useBackend } from '../runtime/backend.js';
import { UsageError } from '../errors.js';
import { getModel } from '../config/models.js';
import { stopFlag, withInterrupt } from '../run/interrupt.js';
import { requireModel } from '../weights/hub.js';
import { checkpointState, loadPreferenceModel, readPreferenceConfig, recordedBackboneDir, type TrainingState } from '../preference/checkpoint.js';
import { readPreferenceDataset } from '../preference/data.js';
import { DEFAULT_TEMPLATE } from '../preference/sequence.js';
import type { BaseLoss } from '../preference/losses.js';
import { ATTENTION_TARGETS, MLP_TARGETS } from '../preference/lora.js';
import { PreferenceModel, type PreferenceConfig } from '../preference/model.js';
import { personalisationWorld, writeTasteWorld, type SynthOptions, type SynthResult } from '../preference/synth.js';
import { trainPreference, type TrainResult, type TrainSettings } from '../preference/train.js';
import { modelPlaces } from './common.js';

export type PreferenceSynthOptions = SynthOptions & {
  /** personalisation: PERSONALISATION_WORLD (./synth.ts) under the options given (default: the options alone). */
  world?: 'default' | 'personalisation';
  quiet?: boolean;
  log?: (line: string) => void;
};

export async function preferenceSynth(o: PreferenceSynthOptions): Promise<SynthResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  if (fs.existsSync(path.join(o.out, 'pairs.jsonl'))) throw new UsageError(`${o.out} already holds a dataset (pairs.jsonl): choose another --out`);
  const given = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as SynthOptions;
  const r = await writeTasteWorld(o.world === 'personalisation' ? { ...personalisationWorld(), ...given } : o);
  if (!o.quiet) {
    const or = Object.entries(r.oracle)
      .map(([k, v]) => `${k} ${v.toFixed(3)}`)
      .join(', ');
    log(
      `reno: wrote ${r.pairs} pairs (${r.images} images) of ${r.users.seen} seen + ${r.users.unseen} unseen users to ${r.dir}; oracle test accuracy: ${or}`,
    );
    const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : 'n/a');
    for (const who of ['unseen', 'seen'] as const) {
      const c = r.ceilings[who];
      log(
        `reno: ceilings on ${who} users' test pairs (${c.n}): population taste ${pct(c.population)}, group oracle ${pct(c.group)}, Bayes ${pct(c.bayes)} (expected ${pct(c.bayes_expected)})`,
      );
    }
    log(`reno: ceilings written to ${path.join(r.dir, 'ceilings.json')}`);
  }
  return r;
}

export interface PreferenceTrainOptions {
  data: string;
  out: string;
  /** Continue the checkpoint in `out` (its saved settings; only steps/protoSteps/saveEvery/evalEvery may change). */
  resume?: boolean;
  /** Replace a checkpoint already in `out`. */
  force?: boolean;
  /** The SmolVLM folder (else the registry's smolvlm via --models-dir / --preset / the HF cache). */
  backbone?: string;
  modelsDir?: string;
  preset?: string;
  prototypes?: number;
  nRef?: number;
  /** Reference pairs per training sample drawn from minRef .. nRef (default nRef). */
  minRef?: number;
  /** --no-prompt: entries without the prompt (ViPer*). */
  noPrompt?: boolean;
  loraRank?: number;
  loraAlpha?: number;
  /** LoRA target modules (default q_proj,k_proj,v_proj,o_proj); loraMlp adds gate/up/down. */
  loraTargets?: string[];
  loraMlp?: boolean;
  trainVision?: boolean;
  /** Train the language model in full (decoder layers, final norm, lm_head) instead of only its LoRA adapters. */
  trainText?: boolean;
  steps?: number;
  protoSteps?: number;
  batch?: number;
  lr?: number;
  protoLr?: number;
  weightDecay?: number;
  maxGradNorm?: number;
  baseLoss?: BaseLoss;
  noAuxLoss?: boolean;
  /** Weight of the history loss (each reference pair's first label predicted from the entries before it); 0: off. */
  historyLoss?: number;
  /** Target pairs per sample scored after one history (default 1). */
  targets?: number;
  /** Share of samples whose target is one of their references (a curriculum; default 0). */
  copyShare?: number;
  seed?: number;
  saveEvery?: number;
  evalEvery?: number;
  evalPairs?: number;
  backend?: string;
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
  log?: (line: string) => void;
  shouldStop?: () => boolean;
}

/** The paper's settings (4.1), and the tiny preset's (a random 2-layer backbone learns only with a larger lr). */
export const TRAIN_DEFAULTS = {
  paper: {
    prototypes: 10,
    nRef: 8,
    minRef: undefined,
    trainVision: true,
    trainText: false,
    loraRank: 8,
    loraAlpha: 8,
    steps: 5000,
    protoSteps: 16000,
    batch: 64,
    lr: 1e-5,
    weightDecay: 1e-2,
    maxGradNorm: 1,
    historyLoss: 0,
    targets: 1,
    copyShare: 0,
    evalPairs: 500,
    saveEvery: 100,
  },
  tiny: {
    prototypes: 10,
    nRef: 3,
    minRef: 1,
    trainVision: true,
    trainText: false,
    loraRank: 8,
    loraAlpha: 16,
    steps: 100,
    protoSteps: 20,
    batch: 16,
    lr: 3e-3,
    weightDecay: 1e-2,
    maxGradNorm: 1,
    historyLoss: 0,
    targets: 1,
    copyShare: 0,
    evalPairs: 100,
    saveEvery: 25,
  },
} as const;

/** Options that a resume may change; any other option given must equal the checkpoint's. */
const RESUMABLE = new Set([
  'data',
  'out',
  'resume',
  'force',
  'backbone',
  'modelsDir',
  'preset',
  'backend',
  'quiet',
  'stream',
  'log',
  'shouldStop',
  'steps',
  'protoSteps',
  'saveEvery',
  'evalEvery',
  'evalPairs',
]);

/** The backbone folder: --backbone, else the registry's smolvlm (--models-dir / --preset / HF cache); a resume
 * without either takes the folder the checkpoint recorded. */
function backboneDir(o: PreferenceTrainOptions, out: string): string {
  if (o.backbone) return path.resolve(o.backbone);
  if (o.resume && !o.modelsDir && !o.preset && fs.existsSync(path.join(out, 'config.json'))) {
    const dir = recordedBackboneDir(out);
    if (dir) return dir;
  }
  return requireModel(getModel('smolvlm'), modelPlaces({ modelsDir: o.modelsDir, preset: o.preset })).dir;
}

/** Resolved settings of a fresh run (defaults of the paper or of the preset, then the options). */
export function trainSettings(o: PreferenceTrainOptions): { config: PreferenceConfig; settings: TrainSettings; record: Record<string, unknown> } {
  const d = o.preset === 'tiny' ? TRAIN_DEFAULTS.tiny : TRAIN_DEFAULTS.paper;
  const targets = o.loraTargets ?? [...ATTENTION_TARGETS, ...(o.loraMlp ? MLP_TARGETS : [])];
  const rank = o.loraRank ?? d.loraRank;
  const config: PreferenceConfig = {
    prototypes: o.prototypes ?? d.prototypes,
    lora: rank > 0 ? { rank, alpha: o.loraAlpha ?? d.loraAlpha, targets } : null,
    trainVision: o.trainVision ?? d.trainVision,
    trainText: o.trainText ?? d.trainText,
    usePrompt: !o.noPrompt,
    nRef: o.nRef ?? d.nRef,
    template: DEFAULT_TEMPLATE,
  };
  const settings: TrainSettings = {
    stage1Steps: o.steps ?? d.steps,
    stage2Steps: o.protoSteps ?? d.protoSteps,
    minRef: o.minRef ?? d.minRef,
    batch: o.batch ?? d.batch,
    lr: o.lr ?? d.lr,
    protoLr: o.protoLr,
    weightDecay: o.weightDecay ?? d.weightDecay,
    maxGradNorm: o.maxGradNorm ?? d.maxGradNorm,
    baseLoss: o.baseLoss ?? 'vocab',
    aux: !o.noAuxLoss,
    historyLoss: o.historyLoss ?? d.historyLoss,
    targets: o.targets ?? d.targets,
    copyShare: o.copyShare ?? d.copyShare,
    seed: o.seed ?? 0,
    saveEvery: o.saveEvery ?? d.saveEvery,
    evalEvery: o.evalEvery ?? 0,
    evalPairs: o.evalPairs ?? d.evalPairs,
  };
  for (const [k, v] of Object.entries({
    steps: settings.stage1Steps,
    protoSteps: settings.stage2Steps,
    saveEvery: settings.saveEvery,
    evalPairs: settings.evalPairs,
  }))
    if (!(Number.isInteger(v) && v >= 0)) throw new UsageError(`--${k} must be an integer >= 0, found ${v}`);
  if (!(Number.isInteger(settings.batch) && settings.batch >= 1)) throw new UsageError(`--batch must be a positive integer, found ${settings.batch}`);
  if (!(settings.lr > 0)) throw new UsageError(`--lr must be positive, found ${settings.lr}`);
  if (settings.saveEvery === 0) settings.saveEvery = Number.MAX_SAFE_INTEGER;
  const record = {
    data: path.resolve(o.data),
    preset: o.preset ?? null,
    ...settings,
    protoLr: settings.protoLr ?? null,
    saveEvery: o.saveEvery ?? d.saveEvery,
  };
  return { config, settings, record };
}

type Saved = Record<string, unknown>;
const savedLora = (c: Saved) => (c.lora ?? null) as { rank: number; alpha: number; targets: string[] } | null;

/** How each option that a resume cannot change is found in a checkpoint's config.json (model keys, then "training"). */
const SAVED: Record<string, (cfg: Saved, t: Saved) => unknown> = {
  prototypes: (c) => c.prototypes,
  nRef: (c) => c.n_ref,
  noPrompt: (c) => !c.use_prompt,
  loraRank: (c) => savedLora(c)?.rank ?? 0,
  loraAlpha: (c) => savedLora(c)?.alpha,
  loraTargets: (c) => savedLora(c)?.targets,
  loraMlp: (c) => MLP_TARGETS.every((t) => (savedLora(c)?.targets ?? []).includes(t)),
  trainVision: (c) => c.train_vision,
  trainText: (c) => c.train_text ?? false,
  minRef: (_, t) => t.minRef,
  batch: (_, t) => t.batch,
  lr: (_, t) => t.lr,
  protoLr: (_, t) => t.protoLr ?? undefined,
  weightDecay: (_, t) => t.weightDecay,
  maxGradNorm: (_, t) => t.maxGradNorm,
  baseLoss: (_, t) => t.baseLoss,
  noAuxLoss: (_, t) => !t.aux,
  historyLoss: (_, t) => t.historyLoss ?? 0,
  targets: (_, t) => t.targets ?? 1,
  copyShare: (_, t) => t.copyShare ?? 0,
  seed: (_, t) => t.seed,
};

/** Settings saved in a checkpoint, with the changes a resume allows; any other option must equal the saved one. */
function resumedSettings(o: PreferenceTrainOptions, cfg: Saved): { settings: TrainSettings; record: Record<string, unknown> } {
  const saved = (cfg.training ?? {}) as Saved;
  const fresh = trainSettings({ ...o, preset: (saved.preset as string | null) ?? undefined });
  const keys = Object.keys(fresh.settings) as (keyof TrainSettings)[];
  const settings = Object.fromEntries(keys.map((k) => [k, saved[k] ?? fresh.settings[k]])) as unknown as TrainSettings;
  if (settings.protoLr === null) settings.protoLr = undefined;
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || RESUMABLE.has(k)) continue;
    const was = SAVED[k]?.(cfg, saved);
    if (JSON.stringify(was) !== JSON.stringify(v))
      throw new UsageError(
        `--resume continues with the checkpoint's settings: "${k}" cannot change (${JSON.stringify(was)} in the checkpoint, ${JSON.stringify(v)} given)`,
      );
  }
  if (o.steps !== undefined) settings.stage1Steps = o.steps;
  if (o.protoSteps !== undefined) settings.stage2Steps = o.protoSteps;
  if (o.saveEvery !== undefined) settings.saveEvery = o.saveEvery || Number.MAX_SAFE_INTEGER;
  if (o.evalEvery !== undefined) settings.evalEvery = o.evalEvery;
  if (o.evalPairs !== undefined) settings.evalPairs = o.evalPairs;
  return { settings, record: { ...saved, stage1Steps: settings.stage1Steps, stage2Steps: settings.stage2Steps } };
}

export async function preferenceTrain(o: PreferenceTrainOptions): Promise<TrainResult & { out: string }> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const out = path.resolve(o.out);
  const ds = readPreferenceDataset(o.data);
  const dir = backboneDir(o, out);
  const hasCkpt = fs.existsSync(path.join(out, 'config.json'));
  if (hasCkpt && !o.resume && !o.force)
    throw new UsageError(`${out} already holds a preference checkpoint: use --resume to continue it or --force to replace it`);
  if (o.resume && !hasCkpt) throw new UsageError(`--resume: no checkpoint in ${out}`);
  await useBackend(o.backend, { quiet: o.quiet });
  let model: PreferenceModel;
  let settings: TrainSettings;
  let record: Record<string, unknown>;
  let start: TrainingState = { stage: 1, step: 0 };
  if (o.resume) {
    ({ settings, record } = resumedSettings(o, readPreferenceConfig(out).json));
    start = checkpointState(out);
    if (fs.existsSync(path.join(out, 'optimizer.safetensors'))) {
      const os = checkpointState(out, 'optimizer.safetensors');
      if (os.stage !== start.stage || os.step !== start.step)
        throw new UsageError(
          `${out}: model.safetensors (stage ${start.stage} step ${start.step}) and optimizer.safetensors (stage ${os.stage} step ${os.step}) disagree: an interrupted save?`,
        );
    }
    model = loadPreferenceModel(out, { backboneDir: dir, trainable: true });
    if (!o.quiet) log(`reno: resuming ${out} at stage ${start.stage} step ${start.step}`);
  } else {
    const s = trainSettings(o);
    settings = s.settings;
    record = { ...s.record, backbone: dir };
    model = PreferenceModel.create(dir, s.config, { seed: settings.seed, trainable: true });
  }
  try {
    const flag = stopFlag();
    const shouldStop = () => flag.requested || (o.shouldStop?.() ?? false);
    const r = await withInterrupt(
      flag,
      () =>
        trainPreference(model, ds, settings, {
          out,
          start,
          optimizerFile: path.join(out, 'optimizer.safetensors'),
          record,
          quiet: o.quiet,
          stream: o.stream,
          log,
          shouldStop,
        }),
      log,
    );
    return { ...r, out };
  } finally {
    model.dispose();
  }
}
