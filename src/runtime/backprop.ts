// Reverse-mode differentiation that frees each gradient as soon as it has been used: a port of tfjs-core's
// Engine.gradients and tape.ts (getFilteredNodesXToY, backpropagateGradients), installed in their place for the
// top-level case (tf.grad, tf.grads, tf.valueAndGrads, tf.variableGrads and reno's isolatedGrads all end there).
// tfjs keeps every intermediate gradient until the whole backward pass ends: the gradient of each tape tensor stays in
// its accumulation map, the second operand of each accumulation is never freed, and what a custom gradient function
// makes outside a tidy lives on too. In a checkpointed VAE decoder's backward pass at 512 px that is one tensor of
// 128-268 MB per op of the unit being recomputed plus one per unit boundary (bench/RESULTS.md). Here the gradient of a
// tensor is freed once its producer has used it, so is what each node saved for its gradient, each accumulation
// frees both operands, and each node's gradient runs in a tidy of its own. Values and gradients are the same (the
// same gradient functions, in the same order).
import * as tf from './tf.js';
import { setting } from './settings.js';
import { watchStage } from './watchdog.js';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
  gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean): { value: tf.Tensor; grads: tf.Tensor[] };
}

/** The tape's nodes on a path from xs to y, each with its inputs pruned to those that depend on xs (tape.ts). */
function nodesFromXToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      for (const o of node.outputs) fromX.add(o.id);
      nodesFromX.add(node.id);
    }
  }
  const toY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      for (const t of Object.values(node.inputs)) toY.add(t.id);
      nodesToY.add(node.id);
    }
  }
  return tape
    .filter((n) => nodesFromX.has(n.id) && nodesToY.has(n.id))
    .map((n) => ({ ...n, inputs: Object.fromEntries(Object.entries(n.inputs).filter(([, t]) => fromX.has(t.id))) }));
}

/**
 * Gradients of f's value at xs, seeded with dy (ones by default), as Engine.gradients returns them ({ value, grads },
 * undefined for an x the value does not depend on when allowNoGradients). keepValue false frees the value as soon as
 * the forward pass has made it (a checkpoint's recomputation needs only the gradients), and returns it disposed.
 */
export function leanGradients(
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor | null,
  allowNoGradients = false,
  keepValue = true,
): { value: tf.Tensor; grads: tf.Tensor[] } {
  const outer = watchStage('forward pass of a gradient');
  try {
    return leanGradientsIn(f, xs, dy, allowNoGradients, keepValue);
  } finally {
    watchStage(outer);
  }
}

function leanGradientsIn(
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy: tf.Tensor | null | undefined,
  allowNoGradients: boolean,
  keepValue: boolean,
): { value: tf.Tensor; grads: tf.Tensor[] } {
  const engine = tf.engine() as unknown as EngineInternals;
  if (xs.length === 0) throw new Error('gradients() received an empty list of xs.');
  if (dy != null && dy.dtype !== 'float32') throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
  const y = engine.scopedRun(
    () => engine.startTape(),
    () => engine.endTape(),
    () => engine.tidy('forward', f),
  );
  if (!(y instanceof tf.Tensor)) throw new Error('The result y returned by f() must be a tensor.');
  const tape = engine.state.activeTape ?? [];
  const nodes = nodesFromXToY(tape, xs, y);
  if (!allowNoGradients && nodes.length === 0) {
    throw new Error(
      'Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations that lead from x to y.',
    );
  }
  watchStage('backward pass');
  return engine.tidy('backward', () => {
    const xIds = new Set(xs.map((x) => x.id));
    const seed = dy ?? tf.ones(y.shape);
    // the gradient of each tensor id, and how many ids hold each gradient tensor (a gradient function may hand the
    // same tensor to several inputs, or pass dy through)
    const grads = new Map<number, tf.Tensor>();
    const holders = new Map<tf.Tensor, number>();
    const hold = (id: number, g: tf.Tensor) => {
      grads.set(id, g);
      holders.set(g, (holders.get(g) ?? 0) + 1);
    };
    // never the caller's dy, a kept tensor or an x
    const free = (g: tf.Tensor) => {
      if (g !== dy && !g.kept && !xIds.has(g.id)) g.dispose();
    };
    const release = (g: tf.Tensor) => {
      const n = (holders.get(g) ?? 1) - 1;
      if (n > 0) holders.set(g, n);
      else {
        holders.delete(g);
        free(g);
      }
    };
    hold(y.id, seed);
    if (!keepValue && !xIds.has(y.id)) y.dispose(); // only its id is needed from here on
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i];
      const dys = node.outputs.map((o) => grads.get(o.id) ?? null);
      if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
      const gradient = node.gradient;
      // what the gradient function makes outside its closures (a custom gradient's body) is freed with this tidy
      const dxs = tf.tidy(() => {
        const inputGradients = gradient(dys);
        const out: Record<string, tf.Tensor> = {};
        for (const name in node.inputs) {
          if (!(name in inputGradients))
            throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(inputGradients)}.`);
          out[name] = tf.tidy(() => inputGradients[name]());
        }
        return out;
      });
      for (const name in node.inputs) {
        const dx = dxs[name];
        const x = node.inputs[name];
        if (dx.dtype !== 'float32')
          throw new Error(
            `Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`,
          );
        if (!tf.util.arraysEqual(dx.shape, x.shape)) {
          throw new Error(
            `Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`,
          );
        }
        const current = grads.get(x.id);
        if (current === undefined) hold(x.id, dx);
        else {
          const sum = tf.add(current, dx);
          grads.delete(x.id);
          release(current);
          if (!holders.has(dx)) free(dx); // unless another input's gradient is this same tensor
          hold(x.id, sum);
        }
      }
      // what this node saved for its gradient is used: freed now, not when the whole pass ends (a checkpointed unit's
      // saved input, once its recomputation is done), unless the gradient function handed a saved tensor back
      if (node.saved?.length) {
        const handedBack = new Set(Object.values(dxs));
        for (const t of node.saved) if (!handedBack.has(t)) t.dispose();
      }
      // every consumer of this node's outputs came later on the tape: their gradients are complete and used now
      for (const o of node.outputs) {
        const g = grads.get(o.id);
        if (g === undefined || xIds.has(o.id)) continue;
        grads.delete(o.id);
        release(g);
      }
    }
    const out = xs.map((x) => grads.get(x.id)) as tf.Tensor[];
    if (engine.state.gradientDepth === 0) {
      for (const node of tape) for (const t of node.saved ?? []) t.dispose();
      engine.state.activeTape = null;
    }
    return { value: y, grads: out };
  });
}

let lean = setting('leanBackprop');

/** Switches the lean backward pass (on by default; off: tfjs' own Engine.gradients, for comparison). */
export function setLeanBackprop(on: boolean): void {
  lean = on;
}

// installed once, when this module is first imported (src/nn/ops.ts imports it): top-level gradients only; a
// gradient taken while another is being recorded (higher-order) keeps tfjs' own
const proto = Object.getPrototypeOf(tf.engine()) as EngineInternals;
const tfjsGradients = proto.gradients;
proto.gradients = function (this: EngineInternals, f, xs, dy, allowNoGradients = false) {
  if (!lean || this.state.gradientDepth > 0) return tfjsGradients.call(this, f, xs, dy, allowNoGradients);
  return leanGradients(f, xs, dy, allowNoGradients);
};

/** Top-level gradients by the switched-on path (reno's isolatedGrads); keepValue as in leanGradients. */
export function gradients(
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy: tf.Tensor | undefined,
  keepValue: boolean,
): { value: tf.Tensor; grads: tf.Tensor[] } {
  if (lean) return leanGradients(f, xs, dy, true, keepValue);
  return tfjsGradients.call(tf.engine() as unknown as EngineInternals, f, xs, dy, true);
}
