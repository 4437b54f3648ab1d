// AutoencoderKL (diffusers models/autoencoders/autoencoder_kl.py, vae.py Encoder/Decoder, unet_2d_blocks.py
// UNetMidBlock2D, DownEncoderBlock2D, UpDecoderBlock2D), NHWC. All VAE norms use eps 1e-6.
import * as tf from '../../runtime/tf.js';
import { Conv2d, GroupNorm } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { checkpoint } from '../../nn/recompute.js';
import { Attention } from './attention.js';
import type { VaeConfig } from './config.js';
import { Downsample2D, ResnetBlock2D, Upsample2D } from './resnet.js';

const EPS = 1e-6;

/** UNetMidBlock2D without time embedding: resnet -> single-head attention with its own GroupNorm -> resnet. */
export class VaeMidBlock extends Module {
  resnets: ResnetBlock2D[];
  attentions: Attention[];
  constructor(ch: number, groups: number, addAttention: boolean) {
    super();
    this.resnets = [0, 1].map(() => new ResnetBlock2D(ch, ch, groups, EPS, null));
    // heads = channels / attention_head_dim with attention_head_dim = channels: one head of size ch
    this.attentions = addAttention ? [new Attention(ch, 1, ch, { bias: true, groupNorm: { groups, eps: EPS } })] : [];
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return checkpoint(
      (xx) => {
        let h = this.resnets[0].forward(xx as tf.Tensor4D);
        if (this.attentions.length) {
          const [b, hh, w, c] = h.shape;
          const seq = h.reshape([b, hh * w, c]); // [B, H, W, C] -> [B, HW, C]
          h = tf.add(h, this.attentions[0].forward(seq).reshape([b, hh, w, c])); // residual, rescale 1
        }
        return this.resnets[1].forward(h);
      },
      [x],
    );
  }
}

export class DownEncoderBlock extends Module {
  resnets: ResnetBlock2D[];
  downsamplers: Downsample2D[];
  constructor(inC: number, outC: number, layers: number, groups: number, downsample: boolean) {
    super();
    this.resnets = Array.from({ length: layers }, (_, j) => new ResnetBlock2D(j === 0 ? inC : outC, outC, groups, EPS, null));
    this.downsamplers = downsample ? [new Downsample2D(outC, 0)] : [];
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = x;
      for (const r of this.resnets) h = r.forward(h);
      return this.downsamplers.length ? this.downsamplers[0].forward(h) : h;
    });
  }
}

export class UpDecoderBlock extends Module {
  resnets: ResnetBlock2D[];
  upsamplers: Upsample2D[];
  constructor(inC: number, outC: number, layers: number, groups: number, upsample: boolean) {
    super();
    this.resnets = Array.from({ length: layers }, (_, j) => new ResnetBlock2D(j === 0 ? inC : outC, outC, groups, EPS, null));
    this.upsamplers = upsample ? [new Upsample2D(outC)] : [];
  }

  /** Each resnet and the upsampler is one checkpointed unit (the decoder's activations dominate at 512 px). */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = x;
      for (const r of this.resnets) h = checkpoint((a) => r.forward(a as tf.Tensor4D), [h]);
      return this.upsamplers.length ? checkpoint((a) => this.upsamplers[0].forward(a as tf.Tensor4D), [h]) : h;
    });
  }
}

export class Encoder extends Module {
  conv_in: Conv2d;
  down_blocks: DownEncoderBlock[];
  mid_block: VaeMidBlock;
  conv_norm_out: GroupNorm;
  conv_out: Conv2d;
  constructor(c: VaeConfig) {
    super();
    const ch = c.blockOutChannels;
    this.conv_in = new Conv2d(c.inChannels, ch[0], 3, 1, 1);
    this.down_blocks = ch.map(
      (outC, i) => new DownEncoderBlock(i === 0 ? ch[0] : ch[i - 1], outC, c.layersPerBlock, c.normGroups, i < ch.length - 1),
    );
    this.mid_block = new VaeMidBlock(ch[ch.length - 1], c.normGroups, c.midBlockAddAttention);
    this.conv_norm_out = new GroupNorm(c.normGroups, ch[ch.length - 1], EPS);
    this.conv_out = new Conv2d(ch[ch.length - 1], 2 * c.latentChannels, 3, 1, 1); // double_z: mean and logvar
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = this.conv_in.forward(x);
      for (const blk of this.down_blocks) h = blk.forward(h);
      h = this.mid_block.forward(h);
      return this.conv_out.forward(this.conv_norm_out.forward(h, 'silu') as tf.Tensor4D);
    });
  }
}

export class Decoder extends Module {
  conv_in: Conv2d;
  mid_block: VaeMidBlock;
  up_blocks: UpDecoderBlock[];
  conv_norm_out: GroupNorm;
  conv_out: Conv2d;
  constructor(c: VaeConfig) {
    super();
    const rev = [...c.blockOutChannels].reverse();
    this.conv_in = new Conv2d(c.latentChannels, rev[0], 3, 1, 1);
    this.mid_block = new VaeMidBlock(rev[0], c.normGroups, c.midBlockAddAttention);
    this.up_blocks = rev.map(
      (outC, i) => new UpDecoderBlock(i === 0 ? rev[0] : rev[i - 1], outC, c.layersPerBlock + 1, c.normGroups, i < rev.length - 1),
    );
    this.conv_norm_out = new GroupNorm(c.normGroups, rev[rev.length - 1], EPS);
    this.conv_out = new Conv2d(rev[rev.length - 1], c.outChannels, 3, 1, 1);
  }

  forward(z: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = this.mid_block.forward(this.conv_in.forward(z));
      for (const blk of this.up_blocks) h = blk.forward(h);
      return this.conv_out.forward(this.conv_norm_out.forward(h, 'silu') as tf.Tensor4D);
    });
  }
}

export class AutoencoderKL extends Module {
  encoder: Encoder | null;
  quant_conv: Conv2d | null;
  post_quant_conv: Conv2d | null;
  decoder: Decoder;
  /** withEncoder false builds the decoder half only (SD-Turbo never encodes); load with ignoreEncoderKeys. */
  constructor(
    readonly config: VaeConfig,
    withEncoder = true,
  ) {
    super();
    const l = config.latentChannels;
    this.encoder = withEncoder ? new Encoder(config) : null;
    this.quant_conv = withEncoder && config.useQuantConv ? new Conv2d(2 * l, 2 * l, 1) : null;
    this.post_quant_conv = config.usePostQuantConv ? new Conv2d(l, l, 1) : null;
    this.decoder = new Decoder(config);
  }

  /** latents [B, h, w, C] (already divided by the scaling factor) -> image [B, H, W, 3] in about [-1, 1]. */
  decode(z: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.decoder.forward(this.post_quant_conv ? this.post_quant_conv.forward(z) : z));
  }

  /** image [B, H, W, 3] in [-1, 1] -> the diagonal Gaussian's mean and log-variance (clamped to [-30, 20]). */
  encode(x: tf.Tensor4D): { mean: tf.Tensor4D; logvar: tf.Tensor4D } {
    if (!this.encoder) throw new Error('this AutoencoderKL was built without its encoder');
    const enc = this.encoder;
    return tf.tidy(() => {
      let m = enc.forward(x);
      if (this.quant_conv) m = this.quant_conv.forward(m);
      const [mean, logvar] = tf.split(m, 2, 3) as tf.Tensor4D[];
      return { mean, logvar: tf.clipByValue(logvar, -30, 20) };
    });
  }
}

/** Keys of the encoder half, for loading a decoder-only AutoencoderKL from a full VAE file. */
export const isEncoderKey = (k: string): boolean => k.startsWith('encoder.') || k.startsWith('quant_conv.');

/** Legacy VAE attention names (query/key/value/proj_attn) -> to_q/to_k/to_v/to_out.0 (diffusers _fix_state_dict_keys_on_load). */
export function renameLegacyVaeKey(k: string): string {
  return k
    .replace(/(attentions\.\d+)\.query\./, '$1.to_q.')
    .replace(/(attentions\.\d+)\.key\./, '$1.to_k.')
    .replace(/(attentions\.\d+)\.value\./, '$1.to_v.')
    .replace(/(attentions\.\d+)\.proj_attn\./, '$1.to_out.0.');
}
