// ResnetBlock2D, Downsample2D and Upsample2D (diffusers models/resnet.py, downsampling.py, upsampling.py), NHWC.
// Shared by the UNet (with a time embedding, eps 1e-5) and the VAE (no time embedding, eps 1e-6).
import * as tf from '../../runtime/tf.js';
import { Conv2d, GroupNorm, Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { silu, upsampleNearest2x } from '../../nn/ops.js';
import type { ConstantConditioning } from './conditioning.js';

export class ResnetBlock2D extends Module {
  norm1: GroupNorm;
  conv1: Conv2d;
  time_emb_proj: Linear | null;
  norm2: GroupNorm;
  conv2: Conv2d;
  conv_shortcut: Conv2d | null;
  /** The UNet's cache of values made from constant time embeddings (./conditioning.ts); null in the VAE. */
  conditioning: ConstantConditioning | null = null;
  constructor(inC: number, outC: number, groups: number, eps: number, tembC: number | null) {
    super();
    this.norm1 = new GroupNorm(groups, inC, eps);
    this.conv1 = new Conv2d(inC, outC, 3, 1, 1);
    this.time_emb_proj = tembC ? new Linear(tembC, outC) : null;
    this.norm2 = new GroupNorm(groups, outC, eps);
    this.conv2 = new Conv2d(outC, outC, 3, 1, 1);
    this.conv_shortcut = inC !== outC ? new Conv2d(inC, outC, 1) : null;
  }

  /** x [B, H, W, Cin], temb [B, T] (already the UNet's time embedding; SiLU is applied here). */
  forward(x: tf.Tensor4D, temb?: tf.Tensor2D): tf.Tensor4D {
    return tf.tidy(() => {
      // the shortcut first: the backward pass then reaches it last, so its input gradient is not held through the
      // main branch's (a 1x1 conv's gradient has the input's channels)
      const skip = this.conv_shortcut ? this.conv_shortcut.forward(x) : x;
      const a = this.norm1.forward(x, 'silu') as tf.Tensor4D;
      const proj = this.time_emb_proj;
      const timeProjection = (t: tf.Tensor2D) => {
        const p = proj!.forward(silu(t)); // [B, Cout]
        return p.reshape([p.shape[0], 1, 1, -1]); // [B, 1, 1, Cout], broadcast over H, W
      };
      let h: tf.Tensor4D;
      if (proj && temb && this.conditioning?.isConstant(temb)) {
        // a constant: with one batch item folded into conv1's bias (one program fewer), else added as a whole
        const [c] = this.conditioning.of(this, () => [
          temb.shape[0] === 1 ? this.conv1.biasPlus(timeProjection(temb).reshape([-1])) : timeProjection(temb),
        ]);
        h = temb.shape[0] === 1 ? this.conv1.forward(a, c) : tf.add(this.conv1.forward(a), c);
      } else {
        h = this.conv1.forward(a);
        if (proj && temb) h = tf.add(h, timeProjection(temb));
      }
      h = this.conv2.forward(this.norm2.forward(h, 'silu') as tf.Tensor4D);
      return tf.add(skip, h);
    });
  }
}

/** Stride-2 3x3 conv. UNet: symmetric padding 1; VAE encoder: padding 0 after F.pad(0, 1, 0, 1). */
export class Downsample2D extends Module {
  conv: Conv2d;
  constructor(
    channels: number,
    readonly padding: number,
  ) {
    super();
    this.conv = new Conv2d(channels, channels, 3, 2, padding);
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      // diffusers pads right and bottom by one when padding == 0 (downsampling.py Downsample2D.forward)
      const xin =
        this.padding === 0
          ? tf.pad(x, [
              [0, 0],
              [0, 1],
              [0, 1],
              [0, 0],
            ])
          : x;
      return this.conv.forward(xin);
    });
  }
}

/** Nearest 2x then a 3x3 conv. */
export class Upsample2D extends Module {
  conv: Conv2d;
  constructor(channels: number) {
    super();
    this.conv = new Conv2d(channels, channels, 3, 1, 1);
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.conv.forward(upsampleNearest2x(x)));
  }
}
