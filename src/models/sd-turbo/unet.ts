// UNet2DConditionModel (diffusers models/unets/unet_2d_condition.py and unet_2d_blocks.py), NHWC. Every size comes
// from UNetConfig; module fields follow the checkpoint's keys (down_blocks.0.attentions.1.transformer_blocks.0...).
import * as tf from '../../runtime/tf.js';
import { Conv2d, GroupNorm, Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { checkpoint } from '../../nn/recompute.js';
import { silu } from '../../nn/ops.js';
import { Attention, Transformer2DModel } from './attention.js';
import { ConstantConditioning } from './conditioning.js';
import type { UNetConfig } from './config.js';
import { Downsample2D, ResnetBlock2D, Upsample2D } from './resnet.js';

/**
 * Sinusoidal timestep embedding (diffusers models/embeddings.py get_timestep_embedding), computed with float32
 * rounding at each step like torch does, so t = 999 matches to the last bit that matters.
 */
export function timestepEmbedding(timesteps: number[], dim: number, flipSinToCos: boolean, shift: number): Float32Array {
  const f = Math.fround;
  const half = Math.floor(dim / 2);
  const out = new Float32Array(timesteps.length * dim);
  const logMax = f(-Math.log(10000));
  for (let b = 0; b < timesteps.length; b++) {
    const t = f(timesteps[b]);
    for (let i = 0; i < half; i++) {
      const exponent = f(f(logMax * i) / f(half - shift));
      const a = f(t * f(Math.exp(exponent)));
      const s = f(Math.sin(a));
      const c = f(Math.cos(a));
      out[b * dim + i] = flipSinToCos ? c : s;
      out[b * dim + half + i] = flipSinToCos ? s : c;
    }
  }
  return out;
}

export class TimestepEmbedding extends Module {
  linear_1: Linear;
  linear_2: Linear;
  constructor(inDim: number, dim: number) {
    super();
    this.linear_1 = new Linear(inDim, dim);
    this.linear_2 = new Linear(dim, dim);
  }

  forward(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => this.linear_2.forward(silu(this.linear_1.forward(x))) as tf.Tensor2D);
  }
}

/** CrossAttnDownBlock2D / DownBlock2D: (resnet -> attention?) x layers, then an optional stride-2 conv. */
export class DownBlock extends Module {
  resnets: ResnetBlock2D[];
  attentions: Transformer2DModel[];
  downsamplers: Downsample2D[];
  constructor(c: UNetConfig, i: number, inC: number, outC: number) {
    super();
    const cross = c.downBlockTypes[i] === 'CrossAttnDownBlock2D';
    const n = c.layersPerBlock[i];
    this.resnets = Array.from({ length: n }, (_, j) => new ResnetBlock2D(j === 0 ? inC : outC, outC, c.normGroups, c.normEps, c.timeEmbedDim));
    this.attentions = cross
      ? Array.from(
          { length: n },
          () => new Transformer2DModel(outC, c.heads[i], c.crossAttentionDim[i], c.transformerLayers[i], c.normGroups, c.useLinearProjection),
        )
      : [];
    this.downsamplers = i < c.blockOutChannels.length - 1 ? [new Downsample2D(outC, c.downsamplePadding)] : [];
  }

  /** Returns the block output and the skip tensors it pushes (one per layer, plus the downsampled one). */
  forward(x: tf.Tensor4D, temb: tf.Tensor2D, ctx: tf.Tensor): { h: tf.Tensor4D; skips: tf.Tensor4D[] } {
    const skips: tf.Tensor4D[] = [];
    let h = x;
    this.resnets.forEach((resnet, j) => {
      // one checkpointed unit per (resnet, transformer) layer
      h = checkpoint(
        (x, t, c) => {
          const r = resnet.forward(x as tf.Tensor4D, t as tf.Tensor2D);
          return this.attentions.length ? this.attentions[j].forward(r, c) : r;
        },
        [h, temb, ctx],
      );
      skips.push(h);
    });
    if (this.downsamplers.length) {
      h = this.downsamplers[0].forward(h);
      skips.push(h);
    }
    return { h, skips };
  }
}

/** CrossAttnUpBlock2D / UpBlock2D: (concat skip -> resnet -> attention?) x (layers + 1), then an optional 2x upsample. */
export class UpBlock extends Module {
  resnets: ResnetBlock2D[];
  attentions: Transformer2DModel[];
  upsamplers: Upsample2D[];
  constructor(c: UNetConfig, i: number, prevOutC: number, outC: number, inC: number) {
    super();
    const rev = c.blockOutChannels.length - 1 - i; // config lists are per down level; up block i mirrors level rev
    const cross = c.upBlockTypes[i] === 'CrossAttnUpBlock2D';
    const n = c.layersPerBlock[rev] + 1;
    this.resnets = Array.from({ length: n }, (_, j) => {
      const skipC = j === n - 1 ? inC : outC;
      const resIn = j === 0 ? prevOutC : outC;
      return new ResnetBlock2D(resIn + skipC, outC, c.normGroups, c.normEps, c.timeEmbedDim);
    });
    this.attentions = cross
      ? Array.from(
          { length: n },
          () => new Transformer2DModel(outC, c.heads[rev], c.crossAttentionDim[rev], c.transformerLayers[rev], c.normGroups, c.useLinearProjection),
        )
      : [];
    this.upsamplers = i < c.blockOutChannels.length - 1 ? [new Upsample2D(outC)] : [];
  }

  /** `skips` are this block's skip tensors in push order; they are consumed from the end. */
  forward(x: tf.Tensor4D, skips: tf.Tensor4D[], temb: tf.Tensor2D, ctx: tf.Tensor): tf.Tensor4D {
    let h = x;
    this.resnets.forEach((resnet, j) => {
      const skip = skips[skips.length - 1 - j];
      const next = checkpoint(
        (x, sk, t, c) => {
          const r = resnet.forward(tf.concat([x, sk], 3) as tf.Tensor4D, t as tf.Tensor2D); // channels: [h, skip]
          return this.attentions.length ? this.attentions[j].forward(r, c) : r;
        },
        [h, skip, temb, ctx],
      );
      if (h !== x) h.dispose();
      h = next;
    });
    if (this.upsamplers.length) {
      const up = checkpoint((x) => this.upsamplers[0].forward(x as tf.Tensor4D), [h]);
      if (h !== x) h.dispose();
      h = up;
    }
    return h;
  }
}

export class MidBlock extends Module {
  resnets: ResnetBlock2D[];
  attentions: Transformer2DModel[];
  constructor(c: UNetConfig) {
    super();
    const last = c.blockOutChannels.length - 1;
    const ch = c.blockOutChannels[last];
    this.resnets = [0, 1].map(() => new ResnetBlock2D(ch, ch, c.normGroups, c.normEps, c.timeEmbedDim));
    this.attentions = [
      new Transformer2DModel(ch, c.heads[last], c.crossAttentionDim[last], c.transformerLayers[last], c.normGroups, c.useLinearProjection),
    ];
  }

  forward(x: tf.Tensor4D, temb: tf.Tensor2D, ctx: tf.Tensor): tf.Tensor4D {
    return checkpoint(
      (xx, t, c) => {
        const h = this.attentions[0].forward(this.resnets[0].forward(xx as tf.Tensor4D, t as tf.Tensor2D), c);
        return this.resnets[1].forward(h, t as tf.Tensor2D);
      },
      [x, temb, ctx],
    );
  }
}

export class UNet2DConditionModel extends Module {
  conv_in: Conv2d;
  time_embedding: TimestepEmbedding;
  down_blocks: DownBlock[];
  mid_block: MidBlock;
  up_blocks: UpBlock[];
  conv_norm_out: GroupNorm;
  conv_out: Conv2d;
  constructor(readonly config: UNetConfig) {
    super();
    const c = config;
    const ch = c.blockOutChannels;
    const n = ch.length;
    this.conv_in = new Conv2d(c.inChannels, ch[0], c.convInKernel, 1, (c.convInKernel - 1) / 2);
    this.time_embedding = new TimestepEmbedding(ch[0], c.timeEmbedDim);
    this.down_blocks = ch.map((outC, i) => new DownBlock(c, i, i === 0 ? ch[0] : ch[i - 1], outC));
    this.mid_block = new MidBlock(c);
    const rev = [...ch].reverse();
    this.up_blocks = rev.map((outC, i) => new UpBlock(c, i, i === 0 ? rev[0] : rev[i - 1], outC, rev[Math.min(i + 1, n - 1)]));
    this.conv_norm_out = new GroupNorm(c.normGroups, ch[0], c.normEps);
    this.conv_out = new Conv2d(ch[0], c.outChannels, c.convOutKernel, 1, (c.convOutKernel - 1) / 2);
    // the resnets and attentions that derive values from the time embedding or the context share one cache
    const visit = (m: unknown): void => {
      if (m instanceof ResnetBlock2D || m instanceof Attention) m.conditioning = this.conditioning;
      if (m instanceof Module) Object.values(m).forEach(visit);
      else if (Array.isArray(m)) m.forEach(visit);
    };
    visit(this);
  }

  /** Values computed once per timestep and context (./conditioning.ts); not a module, so not a parameter. */
  readonly conditioning = new ConstantConditioning();

  /**
   * sample [B, H, W, Cin] (NHWC), timesteps one per batch item, ctx [B, L, Ck] -> [B, H, W, Cout].
   * constantConditioning: the timesteps and ctx are constants of the caller's gradients (ReNO optimises the noise
   * only), so the time embedding, each resnet's time projection and each cross-attention's keys and values are
   * computed once while they stay the same (./conditioning.ts), and no gradient flows to ctx.
   */
  forward(sample: tf.Tensor4D, timesteps: number[], ctx: tf.Tensor, opts: { constantConditioning?: boolean } = {}): tf.Tensor4D {
    const c = this.config;
    return tf.tidy(() => {
      const b = sample.shape[0];
      const ts = timesteps.length === 1 && b > 1 ? new Array(b).fill(timesteps[0]) : timesteps;
      const embed = () =>
        this.time_embedding.forward(
          tf.tensor2d(timestepEmbedding(ts, c.blockOutChannels[0], c.flipSinToCos, c.freqShift), [b, c.blockOutChannels[0]]),
        );
      const { temb, ctx: context } = opts.constantConditioning ? this.conditioning.begin(ts.join(','), ctx, embed) : { temb: embed(), ctx };
      let h = this.conv_in.forward(sample);
      const skips: tf.Tensor4D[] = [h];
      for (const blk of this.down_blocks) {
        const out = blk.forward(h, temb, context);
        skips.push(...out.skips);
        h = out.h;
      }
      h = this.mid_block.forward(h, temb, context);
      for (const blk of this.up_blocks) {
        const take = blk.resnets.length;
        const mine = skips.splice(skips.length - take, take);
        h = blk.forward(h, mine, temb, context);
      }
      return this.conv_out.forward(this.conv_norm_out.forward(h, 'silu') as tf.Tensor4D);
    });
  }

  override dispose(): void {
    this.conditioning.release();
    super.dispose();
  }
}
