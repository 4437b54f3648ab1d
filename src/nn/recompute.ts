// Gradient checkpointing (recompute instead of store) with tf.customGrad: the forward pass of a unit keeps only its
// inputs; the backward pass runs the unit again under its own tape and takes the vector-Jacobian product there.
// Peak memory of a backward pass drops from "every intermediate of the network" to "the unit inputs plus one unit's
// intermediates" for the price of one extra forward pass (ReNO keeps checkpointing on for every model it uses).
// Only for frozen units: gradients flow to the unit's tensor inputs, never to variables captured inside it.
import * as tf from '../runtime/tf.js';
import { setting } from '../runtime/settings.js';
import { gradients } from '../runtime/backprop.js';

let enabled = setting('checkpoint');

export function setCheckpointing(on: boolean): void {
  enabled = on;
}

export function checkpointing(): boolean {
  return enabled;
}

/**
 * tf.grads that keeps to itself: its own tape, freed when it returns, whatever gradient is being recorded around it.
 * tfjs 4.22 keeps one tape per engine (tfjs-core engine.ts gradients): a nested tf.grads inside another gradient's
 * forward pass (gradient depth 1) would append to the outer tape and leave its saved tensors there until the outer
 * backward pass ends; inside a backward pass (depth 0) it would replace the outer tape and clear it. The outer tape
 * and depth are set aside for the duration of the inner call and put back. Used by the checkpoint recompute below and
 * by the ReNO loop, which takes each reward's image gradient on its own tape (src/optimize/loop.ts). keepValue false
 * frees fn's value as soon as it is made (returned disposed), for callers that need the gradients only.
 */
export function isolatedGrads(
  fn: (...xs: tf.Tensor[]) => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
  keepValue = true,
): { value: tf.Tensor; grads: tf.Tensor[] } {
  const state = (tf.engine() as unknown as { state: { activeTape: unknown; gradientDepth: number } }).state;
  const outer = { tape: state.activeTape, depth: state.gradientDepth };
  state.activeTape = null;
  state.gradientDepth = 0;
  try {
    // allowNoGradients: a unit may ignore one of its inputs (e.g. the text context of a block without attention)
    const { value, grads } = gradients(() => fn(...xs), xs, dy, keepValue);
    return { value, grads: grads.map((g, i) => g ?? tf.zerosLike(xs[i])) };
  } finally {
    state.activeTape = outer.tape;
    state.gradientDepth = outer.depth;
  }
}

function innerGrads(fn: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  const { value, grads } = isolatedGrads(fn, xs, dy, false); // the value is freed once made: only gradients are needed
  value.dispose();
  return grads;
}

/** fn(...xs) with recomputation in the backward pass; every tensor fn reads that may be freed early must be in xs. */
export function checkpoint<T extends tf.Tensor>(fn: (...xs: tf.Tensor[]) => T, xs: tf.Tensor[]): T {
  if (!enabled) return fn(...xs);
  const f = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const ins = args as tf.Tensor[];
    save(ins);
    return {
      value: fn(...ins),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => innerGrads(fn, saved, dy),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (f as unknown as (...x: tf.Tensor[]) => T)(...xs);
}
