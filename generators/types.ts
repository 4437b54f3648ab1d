// The generator plug-in interface. A generator turns unit Gaussian noise z into an image in [0, 1] with a gradient
// back to z; text conditioning is prepared once per prompt and reused every optimisation step.
import type * as tf from '../src/runtime/tf.js';

export interface ImageSize {
  height: number;
  width: number;
}

export interface Conditioning {
  /** Tensors kept alive for the run (disposed by dispose()). */
  tensors: tf.Tensor[];
  dispose(): void;
}

export interface Generator {
  readonly name: string;
  /** Where the weights came from (a folder), and whether they are the smoke-test preset. */
  readonly source: { dir: string; smokeTest: boolean };
  /** The size the model was trained for (diffusers: unet sample_size x VAE scale factor). */
  nativeSize(): ImageSize;
  /** NHWC shape of the noise for one image of this size. */
  latentShape(size: ImageSize): [number, number, number, number];
  /** Encode a prompt once (e.g. the text encoder's hidden states). */
  prepare(prompt: string): Conditioning;
  /** Optional: move what only prepare() uses (a text encoder's weights) to host memory until the next prepare(). */
  parkPromptModels?(): Promise<void>;
  /** z [1, h, w, c] unit noise -> image [1, H, W, 3] in [0, 1]; differentiable in z. */
  generate(z: tf.Tensor4D, cond: Conditioning): tf.Tensor4D;
  dispose(): void;
}
