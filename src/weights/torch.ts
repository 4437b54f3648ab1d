// PyTorch zip checkpoints (torch.save since PyTorch 1.6: torch/serialization.py _save / _load). The archive holds
// `<root>/data.pkl` (the pickled object, read by the restricted unpickler in ./pickle.ts) and one entry
// `<root>/data/<key>` per storage with its raw little-endian bytes; `<root>` is named after the file (torch.save uses
// the file's stem; older writers used `archive`). Tensors are strided views into those storages
// (torch/_utils.py _rebuild_tensor_v2: storage, storage_offset, size, stride). read() fetches only the bytes a tensor
// spans, at their offset in the archive, and gathers the view into a contiguous row-major Float32Array.
//
// Key naming: nested dicts (and lists/tuples that hold tensors) are flattened into dotted names, `{'a': {'b': t}}` ->
// `a.b`, `[t0, t1]` -> `0`, `1`. Wrapper stripping: when the top-level object is a dict in which exactly one entry
// holds tensors and that entry is itself a dict (the `{'state_dict': ...}` of HPS_v2*_compressed.pt, or
// `{'model': ..., 'epoch': 3}`), that one level is stripped, so keys are named as in the state dict itself (`wrapper`
// says which key was stripped). A bare tensor saved on its own is named `tensor`. Non-tensor leaves (ints, floats,
// strings, ...) are not keys; extras() returns them by their full dotted path from the top level (never stripped).
import * as fs from 'node:fs';
import { WeightsError } from '../errors.js';
import { PyDict, PySet, TensorRef, unpickle, type PyValue } from './pickle.js';
import { DTYPE_BYTES, decodeToF32, numel, type TensorInfo, type TensorSource } from './source.js';
import { ZipReader, type ZipEntry } from './zip.js';

/** A non-tensor value found in the checkpoint. */
export type TorchExtra = null | boolean | number | bigint | string | Uint8Array | TorchExtra[];

export interface TorchTensorInfo extends TensorInfo {
  /** The storage's key: its bytes are the archive entry `<root>/data/<key>`. */
  storageKey: string;
  /** Offset into the storage, in elements. */
  storageOffset: number;
  /** Strides in elements, one per dimension. */
  stride: number[];
  /** The device the storage was saved from ('cpu', 'cuda:0', ...); recorded, never used. */
  location: string;
}

const MAX_DEPTH = 64;

export class TorchCheckpoint implements TensorSource {
  /** The archive's root folder (`archive`, or the file's stem). */
  readonly root: string;
  /** The top-level key that was stripped (e.g. `state_dict`), or null. */
  readonly wrapper: string | null = null;
  /** The unpickled top-level object, tensors as TensorRef (for callers that need more than keys and extras). */
  readonly tree: PyValue;
  private readonly zip: ZipReader;
  private readonly tensors = new Map<string, { ref: TensorRef; entry: ZipEntry }>();
  private readonly extraValues = new Map<string, TorchExtra>();

  constructor(readonly path: string) {
    this.zip = openZip(path);
    try {
      this.root = findRoot(this.zip);
      const pkl = this.zip.entry(`${this.root}/data.pkl`) as ZipEntry;
      const order = this.zip.entry(`${this.root}/byteorder`);
      if (order && this.zip.read(order).toString('latin1').trim() !== 'little')
        throw new WeightsError(`${path}: storages are big-endian; reno reads little-endian checkpoints only`);
      this.tree = unpickle(this.zip.read(pkl), path);
      const found = new Map<string, TensorRef>();
      let body: PyValue = this.tree;
      if (this.tree instanceof PyDict) {
        const holders = [...this.tree.map].filter(([, v]) => holdsTensor(v, 0));
        if (holders.length === 1 && holders[0][1] instanceof PyDict) {
          this.wrapper = String(holders[0][0]);
          body = holders[0][1];
        }
      }
      if (body instanceof TensorRef) found.set('tensor', body);
      else flatten(body, '', 0, found, null, path);
      flatten(this.tree, '', 0, null, this.extraValues, path);
      for (const [name, ref] of found) this.tensors.set(name, { ref, entry: this.checkTensor(name, ref) });
    } catch (e) {
      this.zip.close();
      throw e;
    }
  }

  /** Fail at open time, naming the tensor, if its dtype is unknown or its view runs past its storage's bytes. */
  private checkTensor(name: string, t: TensorRef): ZipEntry {
    const bad = (why: string) => new WeightsError(`${this.path}: tensor ${name}: ${why}`);
    const esize = DTYPE_BYTES[t.dtype];
    if (!esize) throw bad(`unsupported dtype ${t.dtype} (reno reads ${Object.keys(DTYPE_BYTES).join(', ')})`);
    const entryName = `${this.root}/data/${t.storage.key}`;
    const entry = this.zip.entry(entryName);
    if (!entry) throw bad(`its storage ${entryName} is missing from the archive`);
    const end = (t.offset + span(t)) * esize;
    if (end > entry.size) throw bad(`view ends at byte ${end} of storage ${entryName}, which holds ${entry.size} bytes: truncated or corrupt`);
    return entry;
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo | undefined {
    const t = this.tensors.get(name)?.ref;
    return t && { name, dtype: t.dtype, shape: [...t.shape] };
  }

  /** Everything known about a tensor's place in the archive. */
  tensorInfo(name: string): TorchTensorInfo | undefined {
    const t = this.tensors.get(name)?.ref;
    return (
      t && {
        name,
        dtype: t.dtype,
        shape: [...t.shape],
        storageKey: t.storage.key,
        storageOffset: t.offset,
        stride: [...t.stride],
        location: t.storage.location,
      }
    );
  }

  /** Non-tensor values by their full dotted path (e.g. `epoch`, `config.lr`). */
  extras(): Map<string, TorchExtra> {
    return new Map(this.extraValues);
  }

  read(name: string): Float32Array {
    const e = this.tensors.get(name);
    if (!e) throw new WeightsError(`${this.path}: no tensor named ${name}`);
    const { ref: t, entry } = e;
    const n = numel(t.shape);
    if (n === 0) return new Float32Array(0);
    const esize = DTYPE_BYTES[t.dtype];
    const len = span(t);
    const values = decodeToF32(this.zip.readRange(entry, t.offset * esize, len * esize), t.dtype, len);
    return isContiguous(t) ? values : gather(values, t.shape, t.stride, n);
  }

  close(): void {
    this.zip.close();
  }
}

export function openTorchCheckpoint(file: string): TorchCheckpoint {
  return new TorchCheckpoint(file);
}

function openZip(file: string): ZipReader {
  try {
    return new ZipReader(file);
  } catch (e) {
    if (!(e instanceof WeightsError) || !/not a ZIP archive or truncated/.test(e.message)) throw e;
    const head = Buffer.alloc(4);
    const fd = fs.openSync(file, 'r');
    try {
      fs.readSync(fd, head, 0, 4, 0);
    } finally {
      fs.closeSync(fd);
    }
    if (head.readUInt32LE(0) === 0x04034b50)
      throw new WeightsError(`${e.message.replace('not a ZIP archive or truncated', 'truncated ZIP archive')}`);
    // torch/serialization.py _legacy_load: checkpoints from PyTorch < 1.6 are a bare pickle stream (0x80 = PROTO) or a tar.
    if (head[0] === 0x80)
      throw new WeightsError(
        `${file}: a legacy torch.save file (PyTorch < 1.6, a bare pickle stream, not a ZIP); reno reads the zip format ` +
          'only: re-save it with a current PyTorch or convert it to safetensors',
      );
    throw e;
  }
}

// torch's PyTorchStreamReader takes the archive name from the first entry (caffe2/serialize/inline_container.cc
// init); here: the one top-level folder that holds data.pkl, whatever it is called.
function findRoot(zip: ZipReader): string {
  const roots = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n)).map((n) => n.slice(0, -'/data.pkl'.length));
  if (roots.length === 0) {
    const listed = [...zip.entries.keys()].slice(0, 5).join(', ');
    throw new WeightsError(`${zip.path}: no <root>/data.pkl entry: not a torch.save checkpoint (entries: ${listed || 'none'})`);
  }
  if (roots.length > 1) throw new WeightsError(`${zip.path}: several data.pkl entries (${roots.join(', ')}): ambiguous checkpoint`);
  const root = roots[0];
  if (zip.entry(`${root}/constants.pkl`) || [...zip.entries.keys()].some((n) => n.startsWith(`${root}/code/`)))
    throw new WeightsError(
      `${zip.path}: a TorchScript archive (torch.jit.save: ${root}/constants.pkl, ${root}/code/); reno reads torch.save ` +
        'state dicts only: convert it offline (torch.jit.load(...).state_dict() then torch.save or safetensors)',
    );
  return root;
}

function holdsTensor(v: PyValue, depth: number): boolean {
  if (depth > MAX_DEPTH) return false;
  if (v instanceof TensorRef) return true;
  if (v instanceof PyDict) return [...v.map.values()].some((x) => holdsTensor(x, depth + 1));
  if (Array.isArray(v)) return v.some((x: PyValue) => holdsTensor(x, depth + 1));
  return false;
}

const isScalar = (v: PyValue): boolean =>
  v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string' || v instanceof Uint8Array;

/** Collect tensors (when `tensors` is given) or non-tensor leaves (when `extras` is given) under dotted names. */
function flatten(
  v: PyValue,
  prefix: string,
  depth: number,
  tensors: Map<string, TensorRef> | null,
  extras: Map<string, TorchExtra> | null,
  file: string,
): void {
  if (depth > MAX_DEPTH) throw new WeightsError(`${file}: objects nested more than ${MAX_DEPTH} deep (or cyclic) at ${prefix || '<top>'}`);
  const join = (k: unknown) => (prefix ? `${prefix}.${String(k)}` : String(k));
  const add = <T>(map: Map<string, T> | null, name: string, value: T) => {
    if (!map) return;
    if (map.has(name)) throw new WeightsError(`${file}: two values flatten to the same name ${name}`);
    map.set(name, value);
  };
  if (v instanceof TensorRef) add(tensors, prefix, v);
  else if (v instanceof PyDict) for (const [k, x] of v.map) flatten(x, join(k), depth + 1, tensors, extras, file);
  else if (Array.isArray(v)) {
    const items = v as PyValue[];
    if (items.every(isScalar)) add(extras, prefix, items as TorchExtra[]);
    else items.forEach((x, i) => flatten(x, join(i), depth + 1, tensors, extras, file));
  } else if (v instanceof PySet) {
    if (v.items.every(isScalar)) add(extras, prefix, v.items as TorchExtra[]);
  } else if (isScalar(v)) add(extras, prefix, v as TorchExtra);
  // Storages, dtypes and other markers at a leaf carry no value of their own: skipped.
}

/** Elements from the view's first to its last one, inclusive (torch strides are never negative). */
function span(t: TensorRef): number {
  if (numel(t.shape) === 0) return 0;
  let last = 0;
  for (let d = 0; d < t.shape.length; d++) last += (t.shape[d] - 1) * t.stride[d];
  return last + 1;
}

/** Row-major contiguous (strides of size-1 dimensions do not matter, as in torch's is_contiguous). */
function isContiguous(t: TensorRef): boolean {
  let expected = 1;
  for (let d = t.shape.length - 1; d >= 0; d--) {
    if (t.shape[d] !== 1 && t.stride[d] !== expected) return false;
    expected *= t.shape[d];
  }
  return true;
}

/** Copy a strided view (indices relative to its first element) into row-major order. */
function gather(src: Float32Array, shape: number[], stride: number[], n: number): Float32Array {
  const out = new Float32Array(n);
  const nd = shape.length;
  const last = nd - 1;
  const idx = new Array<number>(nd).fill(0);
  let base = 0;
  let o = 0;
  while (o < n) {
    for (let j = 0; j < shape[last]; j++) out[o++] = src[base + j * stride[last]];
    let d = last - 1;
    for (; d >= 0; d--) {
      idx[d]++;
      base += stride[d];
      if (idx[d] < shape[d]) break;
      base -= stride[d] * shape[d];
      idx[d] = 0;
    }
    if (d < 0) break;
  }
  return out;
}
