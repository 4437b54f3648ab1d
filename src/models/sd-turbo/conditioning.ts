// The UNet's values that depend only on the timestep and the text context, computed once and reused while both stay
// the same. In ReNO both are constants of the whole run (one step at t = 999, one prompt), yet every forward pass
// (and every checkpoint recompute) would compute again the time embedding, each resnet's time projection and each
// cross-attention's keys and values, and every backward pass the gradients of those keys and values: on a GPU, where
// a backward pass is bound by issuing programs (bench/RESULTS.md), about a tenth of the UNet's programs.
// Opt-in per call (UNet2DConditionModel.forward's constantConditioning): the caller promises that no gradient is
// wanted for the context. Values are kept tensors owned here, freed when the timestep or the context changes and
// by release(). One timestep and context at a time: a forward pass with another pair frees the first pair's values,
// so two pairs must not share one gradient computation (the ReNO loop differentiates one UNet call per step).
import * as tf from '../../runtime/tf.js';

const dataIdOf = (t: tf.Tensor): object => (t as unknown as { dataId: object }).dataId;

export class ConstantConditioning {
  private key: string | null = null;
  /** the caller's context's data, and our own copy of it: only the copy (and its clones) count as constant */
  private ctxId: object | null = null;
  private ctx: tf.Tensor | null = null;
  private temb: tf.Tensor2D | null = null;
  /** per module: its values for the current timestep and context */
  private values = new Map<object, tf.Tensor[]>();

  /**
   * The constant time embedding for `key` (the timesteps) and the constant context for `ctx`, made with `make` and
   * a copy of ctx when the timesteps or the context differ from the last call (freeing everything made for those).
   * The UNet passes these two on: modules recognise them (and a checkpoint's saved clones, which share their data),
   * never the caller's own ctx, so a forward pass without the option computes everything as usual.
   */
  begin(key: string, ctx: tf.Tensor, make: () => tf.Tensor2D): { temb: tf.Tensor2D; ctx: tf.Tensor } {
    const fresh = !this.temb || this.temb.isDisposed || !this.ctx || this.ctx.isDisposed;
    if (fresh || this.key !== key || this.ctxId !== dataIdOf(ctx)) {
      this.release();
      this.temb = tf.keep(make());
      this.ctx = tf.keep(tf.mul(ctx, 1)); // a copy: its own data
      this.key = key;
      this.ctxId = dataIdOf(ctx);
    }
    return { temb: this.temb!, ctx: this.ctx! };
  }

  /** Whether t holds the current constant time embedding or context. */
  isConstant(t: tf.Tensor | undefined): boolean {
    if (!t || t.isDisposed) return false;
    const id = dataIdOf(t);
    return [this.temb, this.ctx].some((c) => c !== null && !c.isDisposed && dataIdOf(c) === id);
  }

  /** The values `owner` derives from the constants, made once (outside any gradient tape's reach: kept tensors). */
  of(owner: object, make: () => tf.Tensor[]): tf.Tensor[] {
    let v = this.values.get(owner);
    if (!v || v.some((t) => t.isDisposed)) {
      v = tf.tidy(() => make()).map((t) => tf.keep(t));
      this.values.set(owner, v);
    }
    return v;
  }

  /** Frees every value made here. */
  release(): void {
    for (const list of this.values.values()) tf.dispose(list);
    this.values.clear();
    this.temb?.dispose();
    this.ctx?.dispose();
    this.temb = null;
    this.ctx = null;
    this.key = null;
    this.ctxId = null;
  }
}
