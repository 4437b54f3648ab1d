// Basic layers on tfjs, NHWC for images, [..., C] for sequences. Each one ports the torch.nn module of the same
// name and owns Params named like its state_dict (weight, bias).
import * as tf from '../runtime/tf.js';
import { Module, Param } from './module.js';
import { conv2d as conv2dOp, embeddingLookup, matMulWeight } from './ops.js';
import { normAffine } from './norm.js';

/** torch.nn.Linear: y = x W^T + b, with W stored [in, out] after loading. */
export class Linear extends Module {
  weight: Param;
  bias: Param | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    bias = true,
  ) {
    super();
    this.weight = new Param([outFeatures, inFeatures], 'linear');
    this.bias = bias ? new Param([outFeatures]) : null;
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const shape = x.shape;
      const x2 = x.reshape([-1, this.inFeatures]); // [..., in] -> [N, in]
      const y = matMulWeight(x2 as tf.Tensor2D, this.weight, this.bias?.v ?? null);
      return y.reshape([...shape.slice(0, -1), this.outFeatures]); // [N, out] -> [..., out]
    });
  }
}

/** torch.nn.Conv2d on NHWC input, symmetric explicit padding like PyTorch's. */
export class Conv2d extends Module {
  weight: Param;
  bias: Param | null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: number,
    readonly stride = 1,
    readonly padding = 0,
    bias = true,
  ) {
    super();
    this.weight = new Param([outChannels, inChannels, kernel, kernel], 'conv2d');
    this.bias = bias ? new Param([outChannels]) : null;
  }

  /** `bias` replaces the module's own (a constant folded into it, see biasPlus). */
  forward(x: tf.Tensor4D, bias?: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      return conv2dOp(x, this.weight, this.stride, this.padding, bias ?? this.bias?.v ?? null);
    });
  }

  /** The module's bias plus a per-channel constant c [out] (c alone without a bias), to pass to forward. */
  biasPlus(c: tf.Tensor): tf.Tensor {
    return this.bias ? tf.add(this.bias.v, c) : c;
  }
}

/** torch.nn.GroupNorm on NHWC. */
export class GroupNorm extends Module {
  weight: Param | null;
  bias: Param | null;
  constructor(
    readonly groups: number,
    readonly channels: number,
    readonly eps = 1e-5,
    affine = true,
  ) {
    super();
    this.weight = affine ? new Param([channels]) : null;
    this.bias = affine ? new Param([channels]) : null;
  }

  /** x [B, H, W, C] (or [B, L, C]); act 'silu' applies F.silu after the affine transform (fused on WebGPU). */
  forward(x: tf.Tensor, act: 'none' | 'silu' = 'none'): tf.Tensor {
    return normAffine(x, { groups: this.groups, eps: this.eps, weight: this.weight?.v ?? null, bias: this.bias?.v ?? null, act });
  }
}

/** torch.nn.LayerNorm over the last axis. */
export class LayerNorm extends Module {
  weight: Param | null;
  bias: Param | null;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
    affine = true,
    bias = true,
  ) {
    super();
    this.weight = affine ? new Param([dim]) : null;
    this.bias = affine && bias ? new Param([dim]) : null;
  }

  forward(x: tf.Tensor): tf.Tensor {
    return normAffine(x, { groups: null, eps: this.eps, weight: this.weight?.v ?? null, bias: this.bias?.v ?? null });
  }
}

/** torch.nn.Embedding (lookup by integer ids). */
export class Embedding extends Module {
  weight: Param;
  constructor(
    readonly num: number,
    readonly dim: number,
  ) {
    super();
    this.weight = new Param([num, dim]);
  }

  forward(ids: tf.Tensor): tf.Tensor {
    return embeddingLookup(this.weight.v, ids);
  }
}
