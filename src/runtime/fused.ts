// Whether ops take fused WebGPU programs: tfjs' FusedMatMul / FusedConv2D with the bias, matMul transpose flags
// instead of explicit transposes, and reno's own kernels (./webgpu-norm.ts). Only on the webgpu backend: a backward
// pass there is bound by issuing programs (bench/RESULTS.md, "GPU"); the CPU backends keep their measured fast paths.
// RENO_WEBGPU_FUSED=off (or setFusedKernels(false) in tests and benchmarks) gives the op-by-op programs to compare.
import * as tf from './tf.js';
import { setting } from './settings.js';

let enabled = setting('webgpuFused');

export function fusedKernels(): boolean {
  return enabled && tf.getBackend() === 'webgpu';
}

export function setFusedKernels(on: boolean): void {
  enabled = on;
}
