// How frozen conv and Linear weights are stored from now on: float16 (./half.ts) and/or in host memory. The backend
// setup (./backend.ts) sets both from the settings (RENO_WEIGHT_DTYPE, RENO_HOST_WEIGHTS); nn/module.ts reads them.
let halfWeights = false;

/**
 * Whether frozen conv and Linear weights loaded from now on are stored as float16 (./half.ts): half their device
 * memory, unpacked per use. Set from RENO_WEIGHT_DTYPE=fp16 by the backend setup (./backend.ts); off by default.
 */
export function setHalfWeights(on: boolean): void {
  halfWeights = on;
}

export function halfWeightsOn(): boolean {
  return halfWeights;
}

let hostWeights = false;

/**
 * Whether frozen conv and Linear weights loaded from now on stay in host memory (JavaScript typed arrays), a tensor
 * being made from them where an op uses them (`Param.v`). On wasm (./backend.ts turns it on there) this keeps the
 * weights out of the 4 GiB wasm32 heap, which then holds activations and the weights of the op at hand only (and
 * XNNPACK's packed copy of those, freed with them): the full SD-Turbo UNet alone is 3.46 GB of float32 weights.
 */
export function setHostWeights(on: boolean): void {
  hostWeights = on;
}

export function hostWeightsOn(): boolean {
  return hostWeights;
}
