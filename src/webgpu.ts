// WebGPU on Node through Dawn's binding (npm "webgpu"). Filled in by the WebGPU issue; until then it reports absent.
export async function setupWebgpu(): Promise<boolean> {
  return false;
}
