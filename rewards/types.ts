// The reward plug-in interface. A reward takes the generated image in [0, 1] and returns a loss with a gradient back
// to the pixels: lower is better, in ReNO's "const - score" form, so the weighted sum is minimised. Text features
// are prepared once per prompt.
import type * as tf from '../src/runtime/tf.js';
import type { RewardInput } from './input.js';

export interface PreparedReward {
  /** Scalar loss (const - score); differentiable in the input image. */
  loss(input: RewardInput): tf.Scalar;
  /** Scalar score (higher is better), the same computation as loss. */
  score(input: RewardInput): tf.Scalar;
  dispose(): void;
}

export interface Reward {
  readonly name: string;
  prepare(prompt: string): PreparedReward;
  /** Optional: move what only prepare() uses (a text tower's weights) to host memory until the next prepare(). */
  parkPromptModels?(): Promise<void>;
  dispose(): void;
}

/** What a reward's loader gets: the folder of each model it needs (registry name -> dir) and run options. */
export interface RewardLoadContext {
  /** Folder of a registered model (configs/models.yaml), found by --models-dir / HF cache; throws when missing. */
  locate(model: string): string;
  smokeTest: boolean;
  /** Options of the personal reward (history, guidance, references); others ignore them. */
  personal?: {
    historyFile: string;
    guidance: 'like' | 'dislike';
    nRef: number;
    /** The preference checkpoint folder (e.g. --preference-model); else history.json's "model", else the preset's. */
    checkpoint?: string;
  };
}

export interface RewardSpec {
  name: string;
  /** The name in plots and tables (the papers' spelling, e.g. "Aes Score"; default: name). */
  label?: string;
  description: string;
  /** The "const" of const - score, for reading losses back as scores. */
  offset: number;
  /** Registered models this reward loads (configs/models.yaml names). */
  models: string[];
  load(ctx: RewardLoadContext): Promise<Reward>;
}
