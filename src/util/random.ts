// Seeded Gaussian values: seedrandom's ARC4 stream + Box-Muller, deterministic for a seed on every platform (no
// tensors: the noise of a run, random test weights and the preference model's initial prototypes all start here).
import seedrandom from 'seedrandom';

export function gaussian(n: number, seed: number | string): Float32Array {
  const rng = seedrandom(String(seed));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    let u1 = rng();
    while (u1 <= Number.EPSILON) u1 = rng();
    const u2 = rng();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}
