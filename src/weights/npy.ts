// NumPy .npy reader/writer (format version 1.0-3.0, little-endian, C order), used for parity fixtures.
import * as fs from 'node:fs';
import { WeightsError } from '../errors.js';
import { numel } from './source.js';

export interface NpyArray {
  shape: number[];
  dtype: 'float32' | 'int32' | 'float64' | 'int64' | 'uint8' | 'bool';
  data: Float32Array | Int32Array;
}

const DESCR: Record<string, NpyArray['dtype']> = {
  '<f4': 'float32',
  '<i4': 'int32',
  '<f8': 'float64',
  '<i8': 'int64',
  '|u1': 'uint8',
  '|b1': 'bool',
};

export function parseNpy(buf: Buffer, name = '<npy>'): NpyArray {
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new WeightsError(`${name}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeStr = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeStr === undefined) throw new WeightsError(`${name}: cannot parse header ${header}`);
  if (fortran === 'True') throw new WeightsError(`${name}: Fortran-order arrays are not supported`);
  const dtype = DESCR[descr];
  if (!dtype) throw new WeightsError(`${name}: unsupported dtype ${descr}`);
  const shape = shapeStr
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const n = numel(shape);
  const off = start + hlen;
  const bytes = new Uint8Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + buf.length));
  let data: Float32Array | Int32Array;
  switch (dtype) {
    case 'float32':
      data = new Float32Array(bytes.buffer, 0, n);
      break;
    case 'int32':
      data = new Int32Array(bytes.buffer, 0, n);
      break;
    case 'float64':
      data = Float32Array.from(new Float64Array(bytes.buffer, 0, n));
      break;
    case 'int64':
      data = Int32Array.from(new BigInt64Array(bytes.buffer, 0, n), (v) => Number(v));
      break;
    default:
      data = Int32Array.from(new Uint8Array(bytes.buffer, 0, n));
  }
  return { shape, dtype, data };
}

export function readNpy(file: string): NpyArray {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new WeightsError(`cannot read ${file}: ${(e as Error).message}`);
  }
  return parseNpy(buf, file);
}

export function writeNpy(file: string, shape: readonly number[], data: Float32Array | Int32Array): void {
  const descr = data instanceof Float32Array ? '<f4' : '<i4';
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shp}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}
