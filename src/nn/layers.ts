// Basic layers on tfjs, NHWC for images, [..., C] for sequences. Each one ports the torch.nn module of the same
// name and owns Params named like its state_dict (weight, bias).
import * as tf from '@tensorflow/tfjs';
import { Module, Param } from './module.js';
import { conv2d as conv2dOp, matMulWeight } from './ops.js';
import { standardize } from './norm.js';

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
      let y: tf.Tensor = matMulWeight(x2 as tf.Tensor2D, this.weight.v as tf.Tensor2D);
      if (this.bias) y = tf.add(y, this.bias.v);
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

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const y = conv2dOp(x, this.weight.v as tf.Tensor4D, this.stride, this.padding);
      return (this.bias ? tf.add(y, this.bias.v) : y) as tf.Tensor4D;
    });
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

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const shape = x.shape; // [B, H, W, C] (or [B, L, C])
      const b = shape[0];
      const c = shape[shape.length - 1];
      const g = x.reshape([b, -1, this.groups, c / this.groups]); // [B, HW, G, C/G]
      let y: tf.Tensor = standardize(g, [1, 3], this.eps).reshape(shape); // [B, HW, G, C/G] -> x's shape
      if (this.weight) y = tf.mul(y, this.weight.v);
      if (this.bias) y = tf.add(y, this.bias.v);
      return y;
    });
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
    return tf.tidy(() => {
      let y: tf.Tensor = standardize(x, [x.rank - 1], this.eps);
      if (this.weight) y = tf.mul(y, this.weight.v);
      if (this.bias) y = tf.add(y, this.bias.v);
      return y;
    });
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
    return tf.gather(this.weight.v, ids.toInt());
  }
}
