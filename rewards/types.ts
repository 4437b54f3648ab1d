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
  /** Facts to record in run.yaml and the PNG metadata (e.g. the personal model's mode), string values. */
  readonly info?: Record<string, string>;
  /**
   * Optional: the score (what PreparedReward.score returns) of an image whose loss is `loss`, for a reward whose loss
   * is not its spec's `offset - score` (personal: -log Q or -log(1 - Q)). Read it through scoreFromLoss
   * (rewards/index.ts), never by hand.
   */
  scoreFromLoss?(loss: number): number;
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
    /** Which personal model (--personal): vlm (a trained checkpoint), embedding (no training), auto (default). */
    mode?: 'auto' | 'vlm' | 'embedding';
    /** The embedding model's image tower (default pickscore) and formula (default: personal-embedding.ts). */
    tower?: string;
    formula?: string;
    /** Where the mode's one-line explanation goes (default stderr); quiet runs pass a no-op. */
    log?: (line: string) => void;
  };
}

export interface RewardSpec {
  name: string;
  /** The name in plots and tables (the papers' spelling, e.g. "Aes Score"; default: name). */
  label?: string;
  description: string;
  /** The "const" of const - score, for reading losses back as scores (scoreFromLoss in rewards/index.ts). */
  offset: number;
  /** Registered models this reward loads (configs/models.yaml names). */
  models: string[];
  /** The models it loads for these options, when they depend on them (the personal reward's mode); else `models`. */
  modelsFor?(ctx: RewardLoadContext): string[];
  load(ctx: RewardLoadContext): Promise<Reward>;
}
