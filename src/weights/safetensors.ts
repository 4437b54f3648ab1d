// safetensors reader and writer (format: huggingface/safetensors README, "Format").
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets:[begin,end]},
// "__metadata__"?: {str: str}}, then the data buffer; offsets are relative to byte 8+N. The reader keeps a file
// descriptor open and reads each tensor at its offset, so the file is never loaded whole.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WeightsError } from '../errors.js';
import { DTYPE_BYTES, MergedSource, decodeToF32, numel, type TensorInfo, type TensorSource } from './source.js';

const MAX_HEADER = 100 * 1024 * 1024;

interface Entry extends TensorInfo {
  begin: number;
  end: number;
}

export class SafetensorsFile implements TensorSource {
  readonly metadata: Record<string, string>;
  private readonly entries = new Map<string, Entry>();
  private fd: number | null;
  private readonly dataStart: number;

  constructor(readonly path: string) {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (e) {
      throw new WeightsError(`cannot open ${path}: ${(e as Error).message}`);
    }
    this.fd = fd;
    try {
      const size = fs.fstatSync(fd).size;
      if (size < 8) throw new WeightsError(`${path}: not a safetensors file (${size} bytes, shorter than the 8-byte header length)`);
      const head = Buffer.alloc(8);
      fs.readSync(fd, head, 0, 8, 0);
      const n64 = head.readBigUInt64LE(0);
      if (n64 > BigInt(size - 8))
        throw new WeightsError(`${path}: header length ${n64} runs past the end of the file (${size} bytes): truncated or not safetensors`);
      const n = Number(n64);
      if (n > MAX_HEADER) throw new WeightsError(`${path}: header length ${n} is larger than ${MAX_HEADER} bytes`);
      const hbuf = Buffer.alloc(n);
      fs.readSync(fd, hbuf, 0, n, 8);
      let json: unknown;
      try {
        json = JSON.parse(hbuf.toString('utf8'));
      } catch (e) {
        throw new WeightsError(`${path}: header is not valid JSON (${(e as Error).message})`);
      }
      if (!json || typeof json !== 'object' || Array.isArray(json)) throw new WeightsError(`${path}: header is not a JSON object`);
      this.dataStart = 8 + n;
      const dataLen = size - this.dataStart;
      this.metadata = {};
      for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
        if (name === '__metadata__') {
          this.metadata = (raw ?? {}) as Record<string, string>;
          continue;
        }
        this.entries.set(name, parseEntry(path, name, raw, dataLen));
      }
    } catch (e) {
      fs.closeSync(fd);
      this.fd = null;
      throw e;
    }
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  info(name: string): TensorInfo | undefined {
    const e = this.entries.get(name);
    return e && { name: e.name, dtype: e.dtype, shape: e.shape };
  }

  /** The raw little-endian bytes of one tensor. */
  readBytes(name: string): Uint8Array {
    const e = this.entries.get(name);
    if (!e) throw new WeightsError(`${this.path}: no tensor named ${name}`);
    if (this.fd === null) throw new WeightsError(`${this.path}: file already closed`);
    const out = Buffer.alloc(e.end - e.begin);
    let done = 0;
    while (done < out.length) {
      const got = fs.readSync(this.fd, out, done, out.length - done, this.dataStart + e.begin + done);
      if (got === 0) throw new WeightsError(`${this.path}: unexpected end of file while reading ${name}`);
      done += got;
    }
    return out;
  }

  read(name: string): Float32Array {
    const e = this.entries.get(name);
    if (!e) throw new WeightsError(`${this.path}: no tensor named ${name}`);
    return decodeToF32(this.readBytes(name), e.dtype, numel(e.shape));
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

function parseEntry(file: string, name: string, raw: unknown, dataLen: number): Entry {
  const bad = (why: string) => new WeightsError(`${file}: tensor ${name}: ${why}`);
  if (!raw || typeof raw !== 'object') throw bad('header entry is not an object');
  const { dtype, shape, data_offsets: off } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES))
    throw bad(`unknown dtype ${JSON.stringify(dtype)} (reno reads ${Object.keys(DTYPE_BYTES).join(', ')})`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`bad shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[1] < off[0])
    throw bad(`bad data_offsets ${JSON.stringify(off)}`);
  const want = numel(shape) * DTYPE_BYTES[dtype];
  if (off[1] - off[0] !== want)
    throw bad(`data_offsets ${JSON.stringify(off)} hold ${off[1] - off[0]} bytes, shape ${JSON.stringify(shape)} ${dtype} needs ${want}`);
  if (off[1] > dataLen) throw bad(`data ends at byte ${off[1]}, past the end of the data (${dataLen} bytes): file truncated`);
  return { name, dtype, shape: shape as number[], begin: off[0], end: off[1] };
}

/** A sharded checkpoint: `*.safetensors.index.json` with {"weight_map": {tensor: file}}. */
export function openSafetensorsIndex(indexPath: string): TensorSource {
  let json: { weight_map?: Record<string, string> };
  try {
    json = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new WeightsError(`cannot read index ${indexPath}: ${(e as Error).message}`);
  }
  if (!json.weight_map || typeof json.weight_map !== 'object') throw new WeightsError(`${indexPath}: no "weight_map" object`);
  const files = [...new Set(Object.values(json.weight_map))].sort();
  const shards = files.map((f) => new SafetensorsFile(path.join(path.dirname(indexPath), f)));
  const merged = new MergedSource(shards);
  for (const [k, f] of Object.entries(json.weight_map))
    if (!merged.info(k)) throw new WeightsError(`${indexPath}: tensor ${k} is listed in shard ${f} but is not in it`);
  return merged;
}

/** Open a safetensors file, or a sharded index (path ending in .index.json). */
export function openSafetensors(p: string): TensorSource {
  return p.endsWith('.index.json') ? openSafetensorsIndex(p) : new SafetensorsFile(p);
}

/** float32 -> IEEE half (round to nearest even), for compact test and preset files. */
export function f32ToF16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < src.length; i++) {
    f[0] = src[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = ((x >>> 23) & 0xff) - 127 + 15;
    let mant = x & 0x7fffff;
    if (((x >>> 23) & 0xff) === 0xff) out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
    else if (exp >= 31) out[i] = sign | 0x7c00;
    else if (exp <= 0) {
      if (exp < -10) out[i] = sign;
      else {
        mant |= 0x800000;
        const shift = 14 - exp;
        let h = mant >>> shift;
        const rem = mant & ((1 << shift) - 1);
        const half = 1 << (shift - 1);
        if (rem > half || (rem === half && h & 1)) h++;
        out[i] = sign | h;
      }
    } else {
      let h = sign | (exp << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
      out[i] = h;
    }
  }
  return out;
}

/** Write tensors as a safetensors file (atomically: temp name, then rename); F32 by default, or F16. */
export function writeSafetensors(
  file: string,
  tensors: Iterable<[string, { shape: readonly number[]; data: Float32Array }]>,
  metadata?: Record<string, string>,
  dtype: 'F32' | 'F16' = 'F32',
): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const parts: Buffer[] = [];
  let off = 0;
  for (const [name, t] of tensors) {
    if (t.data.length !== numel(t.shape)) throw new Error(`writeSafetensors: ${name} has ${t.data.length} values for shape ${t.shape}`);
    const arr = dtype === 'F16' ? f32ToF16(t.data) : t.data;
    const bytes = Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
    header[name] = { dtype, shape: [...t.shape], data_offsets: [off, off + bytes.length] };
    parts.push(bytes);
    off += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const hlen = Buffer.alloc(8);
  hlen.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, hlen);
    fs.writeSync(fd, Buffer.from(json, 'utf8'));
    for (const p of parts) fs.writeSync(fd, p);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
