// The parity runner's contract (README, "Weights and parity"; test/fixtures/README.md). A case recognises a fixture folder by name, loads the
// upstream weights from it, feeds the stored inputs and returns one Check per compared tensor. Sizes come from the
// fixture's own config.json and arrays, never from constants.
import * as path from 'node:path';
import { readNpy, type NpyArray } from '../weights/npy.js';

export type CheckKind = 'output' | 'gradient';

export interface Check {
  /** e.g. "unet/out_sample" */
  name: string;
  kind: CheckKind;
  /** max |ours - ref| / max |ref| */
  relErr: number;
  tol: number;
  pass: boolean;
  note?: string;
}

export interface ParityContext {
  backend: string;
  /** Tolerances for this backend: 1e-4 outputs / 1e-3 gradients on cpu and wasm, 1e-3 on webgpu. */
  tol: Record<CheckKind, number>;
  /** The fixture root (cases that use a sibling's weights, like pipeline_onestep, look there). */
  root: string;
}

export interface ParityCase {
  /** The folder name the case recognises. */
  name: string;
  run(dir: string, ctx: ParityContext): Promise<Check[]>;
}

export function npy(dir: string, file: string): NpyArray {
  return readNpy(path.join(dir, 'io', file.endsWith('.npy') ? file : `${file}.npy`));
}

export function relErr(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (ours.length !== ref.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    num = Number.isNaN(d) ? Infinity : Math.max(num, d);
    den = Math.max(den, Math.abs(ref[i]));
  }
  return num / (den || 1);
}

/** Compare a flat array with a reference (same order, same length). */
export function check(
  name: string,
  ours: ArrayLike<number>,
  ref: ArrayLike<number>,
  kind: CheckKind,
  ctx: ParityContext,
  opts: { tol?: number; note?: string } = {},
): Check {
  const e = relErr(ours, ref);
  const tol = opts.tol ?? ctx.tol[kind];
  const note = ours.length !== ref.length ? `length ${ours.length} vs ${ref.length}` : opts.note;
  return { name, kind, relErr: e, tol, pass: e <= tol, note };
}
