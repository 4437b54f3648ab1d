// EulerDiscreteScheduler for SD-Turbo's one step (diffusers schedulers/scheduling_euler_discrete.py): sigmas from the
// beta schedule, trailing timestep spacing, init_noise_sigma, scale_model_input and the epsilon step to x0.
import type { SchedulerConfig } from '../../src/models/sd-turbo/config.js';

export interface EulerStep {
  timestep: number;
  sigma: number;
  /** x_T = initNoiseSigma * z */
  initNoiseSigma: number;
  /** scale_model_input divides by sqrt(sigma^2 + 1) */
  inputScale: number;
}

/** Cumulative product of (1 - beta), computed in float32 as torch does. */
export function alphasCumprod(c: SchedulerConfig): Float32Array {
  const n = c.numTrainTimesteps;
  const f = Math.fround;
  const betas = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (c.betaSchedule === 'scaled_linear') {
      const a = Math.sqrt(c.betaStart);
      const b = Math.sqrt(c.betaEnd);
      const v = f(a + ((b - a) * i) / (n - 1)); // torch.linspace(..., dtype=float32) ** 2
      betas[i] = f(v * v);
    } else betas[i] = f(c.betaStart + ((c.betaEnd - c.betaStart) * i) / (n - 1));
  }
  const out = new Float32Array(n);
  let p = 1;
  for (let i = 0; i < n; i++) {
    p = f(p * f(1 - betas[i]));
    out[i] = p;
  }
  return out;
}

/** Timesteps for `steps` inference steps (set_timesteps). */
export function timesteps(c: SchedulerConfig, steps: number): number[] {
  const n = c.numTrainTimesteps;
  const out: number[] = [];
  if (c.timestepSpacing === 'trailing') {
    const ratio = n / steps;
    for (let t = n; t > 0; t -= ratio) out.push(Math.round(t) - 1);
  } else if (c.timestepSpacing === 'leading') {
    const ratio = Math.floor(n / steps);
    for (let i = steps - 1; i >= 0; i--) out.push(i * ratio + c.stepsOffset);
  } else {
    for (let i = 0; i < steps; i++) out.push(Math.round(((n - 1) * (steps - 1 - i)) / Math.max(steps - 1, 1)));
  }
  return out.slice(0, steps);
}

/** sigma(t) = sqrt((1 - abar_t) / abar_t), linearly interpolated at fractional t. */
export function sigmaAt(abar: Float32Array, t: number): number {
  const f = Math.fround;
  const s = (i: number) => f(Math.sqrt(f(f(1 - abar[i]) / abar[i])));
  const lo = Math.floor(t);
  const hi = Math.min(lo + 1, abar.length - 1);
  const w = t - lo;
  return f(s(lo) * (1 - w) + s(hi) * w);
}

/** The single Euler step SD-Turbo uses (N = 1: t = 999 for trailing spacing, sigma 14.6146). */
export function oneStep(c: SchedulerConfig): EulerStep {
  const abar = alphasCumprod(c);
  const t = timesteps(c, 1)[0];
  const sigma = sigmaAt(abar, t);
  return { timestep: t, sigma, initNoiseSigma: sigma, inputScale: 1 / Math.fround(Math.sqrt(sigma * sigma + 1)) };
}
