// A TensorSource is any file (or set of files) that holds named tensors: safetensors, a sharded safetensors index,
// or a PyTorch zip checkpoint. Models are loaded from a source by key name (see ./load.ts); the source widens every
// floating dtype to float32 and reads one tensor at a time, so a multi-GB file never needs one Buffer.

export interface TensorInfo {
  name: string;
  /** The dtype as the file names it (safetensors spelling: F32, F16, BF16, I64, ...). */
  dtype: string;
  shape: number[];
}

export interface TensorSource {
  /** What to name in error messages (a file path, or an index path). */
  readonly path: string;
  keys(): string[];
  info(name: string): TensorInfo | undefined;
  /** The tensor's values as float32 in row-major order of its stored shape. */
  read(name: string): Float32Array;
  close(): void;
}

/** Several sources seen as one (later ones do not override earlier ones). */
export class MergedSource implements TensorSource {
  readonly path: string;
  private readonly owner = new Map<string, TensorSource>();
  constructor(private readonly sources: TensorSource[]) {
    this.path = sources.map((s) => s.path).join(' + ');
    for (const s of sources) for (const k of s.keys()) if (!this.owner.has(k)) this.owner.set(k, s);
  }
  keys(): string[] {
    return [...this.owner.keys()];
  }
  info(name: string): TensorInfo | undefined {
    return this.owner.get(name)?.info(name);
  }
  read(name: string): Float32Array {
    const s = this.owner.get(name);
    if (!s) throw new Error(`no tensor ${name} in ${this.path}`);
    return s.read(name);
  }
  close(): void {
    for (const s of this.sources) s.close();
  }
}

/** Tensors held in memory (for tests, synthetic models and checkpoints written by reno itself). */
export class MemorySource implements TensorSource {
  constructor(
    private readonly tensors: Map<string, { shape: number[]; data: Float32Array }>,
    readonly path = '<memory>',
  ) {}
  keys(): string[] {
    return [...this.tensors.keys()];
  }
  info(name: string): TensorInfo | undefined {
    const t = this.tensors.get(name);
    return t && { name, dtype: 'F32', shape: t.shape };
  }
  read(name: string): Float32Array {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no tensor ${name} in ${this.path}`);
    return t.data;
  }
  close(): void {}
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** IEEE half -> float32, for a whole buffer of little-endian u16 values. */
export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) out[i] = s * m * 2 ** -24;
    else if (e === 31) out[i] = m ? NaN : s * Infinity;
    else out[i] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}

/** bfloat16 -> float32: the 16 bits are the top half of a float32. */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const u = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return new Float32Array(u.buffer);
}

/** Bytes per element for the dtypes reno can widen to float32 (safetensors spelling). */
export const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Decode little-endian bytes of a known dtype into float32 (integers are converted by value). */
export function decodeToF32(bytes: Uint8Array, dtype: string, count: number): Float32Array {
  // Copy into an aligned buffer first: offsets inside a file are not guaranteed to be aligned.
  const aligned = new Uint8Array(bytes.length);
  aligned.set(bytes);
  const buf = aligned.buffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf, 0, count);
    case 'F16':
      return f16ToF32(new Uint16Array(buf, 0, count));
    case 'BF16':
      return bf16ToF32(new Uint16Array(buf, 0, count));
    case 'F64':
      return Float32Array.from(new Float64Array(buf, 0, count));
    case 'I64': {
      const v = new BigInt64Array(buf, 0, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(v[i]);
      return out;
    }
    case 'I32':
      return Float32Array.from(new Int32Array(buf, 0, count));
    case 'I16':
      return Float32Array.from(new Int16Array(buf, 0, count));
    case 'I8':
      return Float32Array.from(new Int8Array(buf, 0, count));
    case 'U8':
    case 'BOOL':
      return Float32Array.from(new Uint8Array(buf, 0, count));
    default:
      throw new Error(`unknown dtype ${dtype}`);
  }
}
