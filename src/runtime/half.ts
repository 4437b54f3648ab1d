// Float16 storage for frozen weights. tfjs has no half-precision tensors, so a weight is kept as its IEEE binary16
// bit patterns packed two to an int32 (element 2i in the low 16 bits, 2i + 1 in the high 16 bits) and unpacked to a
// float32 tensor where an op uses it: half the resident bytes of the weights (the ReNO step's models hold about
// 12 GB at float32, bench/RESULTS.md), for one unpacked weight at a time. One kernel each way per backend: WGSL's
// pack2x16float / unpack2x16float on WebGPU, the same conversion in JavaScript (round to nearest even) on cpu and wasm.
import * as tf from './tf.js';
import { callKernel, int, registerWebgpuKernel, RenoProgram, type TensorInfo } from './webgpu/program.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bits of x, rounded to nearest even (subnormals, overflow to infinity, NaN kept). */
export function toHalfBits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  let m = b & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  let E = e - 127 + 15; // the half's biased exponent
  if (E >= 0x1f) return sign | 0x7c00;
  if (E <= 0) {
    if (E < -10) return sign; // below half the smallest subnormal: zero
    m |= 0x800000; // the implicit 1
    const shift = 14 - E; // float32's 24-bit significand to the subnormal's 10 bits
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && h & 1)) h++; // a carry into the exponent is the right answer
    return sign | h;
  }
  let h = m >>> 13;
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) {
    h++;
    if (h === 0x400) {
      h = 0;
      if (++E >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (E << 10) | h;
}

/** Every binary16 pattern's float32 value. */
const HALF_VALUES = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

export function fromHalfBits(h: number): number {
  return HALF_VALUES[h & 0xffff];
}

export function packHalfValues(x: ArrayLike<number>): Int32Array {
  const out = new Int32Array(Math.ceil(x.length / 2));
  for (let i = 0; i < out.length; i++) {
    const lo = toHalfBits(x[2 * i]);
    const hi = 2 * i + 1 < x.length ? toHalfBits(x[2 * i + 1]) : 0;
    out[i] = lo | (hi << 16);
  }
  return out;
}

export function unpackHalfValues(p: Int32Array, size: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = HALF_VALUES[(p[i >> 1] >>> ((i & 1) << 4)) & 0xffff];
  return out;
}

export const PACK_HALF = 'RenoPackHalf';
export const UNPACK_HALF = 'RenoUnpackHalf';

class PackHalfProgram extends RenoProgram {
  constructor(n: number) {
    super({ key: 'renoPackHalf', inputs: ['x'], outputShape: [Math.ceil(n / 2)], uniforms: 'n : i32,' });
  }
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    let j = 2 * index + 1;
    let hi = select(0.0, x[min(j, uniforms.n - 1)], j < uniforms.n);
    result[index] = bitcast<i32>(pack2x16float(vec2<f32>(x[2 * index], hi)));
  }`;
  }
}

class UnpackHalfProgram extends RenoProgram {
  constructor(shape: number[]) {
    super({ key: 'renoUnpackHalf', inputs: ['h'], outputShape: shape });
  }
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    let pair = unpack2x16float(bitcast<u32>(h[index / 2]));
    result[index] = select(pair.x, pair.y, (index & 1) == 1);
  }`;
  }
}

type Attrs = { shape: number[] };
registerWebgpuKernel<Attrs>(PACK_HALF, ({ x }, backend) => {
  const n = x.shape.reduce((a, b) => a * b, 1);
  return backend.runWebGPUProgram(new PackHalfProgram(n), [x], 'int32', [int(n)]);
});
registerWebgpuKernel<Attrs>(UNPACK_HALF, ({ h }, backend, { shape }) => backend.runWebGPUProgram(new UnpackHalfProgram(shape), [h], 'float32', []));

/** The JavaScript kernels for the CPU backends: read the input, convert, make the output (cpu and wasm differ there). */
interface CpuBackend {
  readSync(dataId: object): ArrayLike<number>;
  makeTensorInfo?(shape: number[], dtype: string, values: ArrayLike<number>): TensorInfo;
  makeOutput?(shape: number[], dtype: string, memoryOffset?: number, values?: ArrayLike<number>): TensorInfo;
}
const output = (b: CpuBackend, shape: number[], dtype: string, values: ArrayLike<number>): TensorInfo =>
  b.makeTensorInfo ? b.makeTensorInfo(shape, dtype, values) : b.makeOutput!(shape, dtype, undefined, values);
for (const backendName of ['cpu', 'wasm']) {
  tf.registerKernel({
    kernelName: PACK_HALF,
    backendName,
    kernelFunc: (({ inputs: { x }, backend }: { inputs: { x: TensorInfo }; backend: CpuBackend }) => {
      const p = packHalfValues(backend.readSync(x.dataId));
      return output(backend, [p.length], 'int32', p);
    }) as unknown as tf.KernelFunc,
  });
  tf.registerKernel({
    kernelName: UNPACK_HALF,
    backendName,
    kernelFunc: (({ inputs: { h }, backend, attrs: { shape } }: { inputs: { h: TensorInfo }; backend: CpuBackend; attrs: Attrs }) =>
      output(
        backend,
        shape,
        'float32',
        unpackHalfValues(
          backend.readSync(h.dataId) as Int32Array,
          shape.reduce((a, b) => a * b, 1),
        ),
      )) as unknown as tf.KernelFunc,
  });
}

/** x (float32) -> its values as packed binary16 pairs, int32 [ceil(size / 2)]. */
export function packHalf(x: tf.Tensor): tf.Tensor1D {
  return callKernel(PACK_HALF, { x });
}

/** Packed binary16 pairs -> a float32 tensor of `shape`. */
export function unpackHalf(h: tf.Tensor, shape: number[]): tf.Tensor {
  return callKernel(UNPACK_HALF, { h }, { shape });
}
