// A small writer of torch.save zip checkpoints (torch/serialization.py _save, format of PyTorch >= 1.6), for the tiny
// preset and tests: checkpoints in the exact container the released .pt/.pth files use, so they go through the same
// reader (src/weights/torch.ts) as the real ones.
// - data.pkl: pickle protocol 2 (CPython Lib/pickle.py opcodes) of `{wrapper: OrderedDict(...)}` or a bare
//   OrderedDict. Each tensor is `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
//   requires_grad=False, backward_hooks=OrderedDict())`, its storage a persistent id
//   ('storage', torch.FloatStorage | torch.HalfStorage, '<key>', '<location>', numel) (torch's persistent_id()).
// - one stored (uncompressed) entry `<root>/data/<key>` per storage, little-endian, its data aligned to 64 bytes as
//   torch's PyTorchStreamWriter does (padding in a local-header extra field, id "FB"); `<root>/version` and
//   `<root>/byteorder` as torch writes them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { f32ToF16 } from '../../src/weights/safetensors.js';
import { crc32 } from 'node:zlib';

export interface TorchTensor {
  shape: number[];
  data: Float32Array;
}

export interface TorchZipOptions {
  /** Wrap the state dict as {wrapper: state_dict} (HPS_v2*_compressed.pt: 'state_dict'); null = a bare OrderedDict. */
  wrapper?: string | null;
  /** Storage dtype: 'F32' (torch.FloatStorage, default) or 'F16' (torch.HalfStorage). */
  dtype?: 'F32' | 'F16';
  /** Recorded storage location (the released aesthetic head says 'cuda:0'); readers ignore it. Default 'cpu'. */
  location?: string;
  /** The archive's top folder (torch uses the file's stem; old writers 'archive'). Default 'archive'. */
  root?: string;
}

// ---- pickle protocol 2 -----------------------------------------------------------------------------------------

class Pickler {
  private readonly parts: Buffer[] = [];
  private op(code: number, body?: Buffer): void {
    this.parts.push(Buffer.from([code]));
    if (body) this.parts.push(body);
  }
  proto(): void {
    this.op(0x80, Buffer.from([2])); // PROTO 2
  }
  global(module: string, name: string): void {
    this.op(0x63, Buffer.from(`${module}\n${name}\n`, 'utf8')); // GLOBAL
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    this.op(0x58, Buffer.concat([len, b])); // BINUNICODE
  }
  int(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new Error(`pickler: ${n} is not a non-negative integer`);
    if (n < 256)
      this.op(0x4b, Buffer.from([n])); // BININT1
    else if (n < 65536) {
      const b = Buffer.alloc(2);
      b.writeUInt16LE(n);
      this.op(0x4d, b); // BININT2
    } else if (n < 2 ** 31) {
      const b = Buffer.alloc(4);
      b.writeInt32LE(n);
      this.op(0x4a, b); // BININT
    } else {
      const b = Buffer.alloc(9);
      b.writeUInt8(8, 0);
      b.writeBigInt64LE(BigInt(n), 1);
      this.op(0x8a, b); // LONG1, 8 bytes two's complement
    }
  }
  intTuple(xs: number[]): void {
    if (xs.length === 0) return this.op(0x29); // EMPTY_TUPLE
    this.mark();
    for (const x of xs) this.int(x);
    this.op(0x74); // TUPLE
  }
  mark(): void {
    this.op(0x28); // MARK
  }
  tuple(): void {
    this.op(0x74); // TUPLE
  }
  emptyDict(): void {
    this.op(0x7d); // EMPTY_DICT
  }
  emptyTuple(): void {
    this.op(0x29); // EMPTY_TUPLE
  }
  reduce(): void {
    this.op(0x52); // REDUCE
  }
  binpersid(): void {
    this.op(0x51); // BINPERSID
  }
  newFalse(): void {
    this.op(0x89); // NEWFALSE
  }
  setItem(): void {
    this.op(0x73); // SETITEM
  }
  setItems(): void {
    this.op(0x75); // SETITEMS
  }
  stop(): Buffer {
    this.op(0x2e); // STOP
    return Buffer.concat(this.parts);
  }
  /** collections.OrderedDict() */
  orderedDict(): void {
    this.global('collections', 'OrderedDict');
    this.emptyTuple();
    this.reduce();
  }
}

/** The data.pkl bytes for `tensors` (keys in insertion order; storage keys "0", "1", ...). */
export function statePickle(names: string[], shapes: number[][], opts: TorchZipOptions = {}): Buffer {
  const p = new Pickler();
  const storage = opts.dtype === 'F16' ? 'HalfStorage' : 'FloatStorage';
  p.proto();
  const wrapper = opts.wrapper ?? null;
  if (wrapper !== null) {
    p.emptyDict();
    p.str(wrapper);
  }
  p.orderedDict();
  p.mark();
  names.forEach((name, i) => {
    const shape = shapes[i];
    const numel = shape.reduce((a, b) => a * b, 1);
    const stride = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
    p.str(name);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.mark();
    p.mark(); // persistent id ('storage', storage_type, key, location, numel)
    p.str('storage');
    p.global('torch', storage);
    p.str(String(i));
    p.str(opts.location ?? 'cpu');
    p.int(numel);
    p.tuple();
    p.binpersid();
    p.int(0); // storage_offset
    p.intTuple(shape);
    p.intTuple(stride);
    p.newFalse(); // requires_grad
    p.orderedDict(); // backward_hooks
    p.tuple();
    p.reduce();
  });
  p.setItems();
  if (wrapper !== null) p.setItem();
  return p.stop();
}

// ---- zip (stored entries, 64-byte aligned data) -------------------------------------------------------------------

const ALIGN = 64;

function zipStored(entries: [string, Buffer][]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let off = 0;
  for (const [name, data] of entries) {
    const nameBuf = Buffer.from(name, 'utf8');
    const pad = (ALIGN - ((off + 30 + nameBuf.length + 4) % ALIGN)) % ALIGN;
    const extra = Buffer.alloc(4 + pad, 0x5a); // 'Z' padding, as torch writes it
    extra.writeUInt16LE(0x4246, 0); // 'FB'
    extra.writeUInt16LE(pad, 2);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); // local file header signature
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // flags: UTF-8 names
    local.writeUInt16LE(0, 8); // method: stored
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const cen = Buffer.alloc(46);
    cen.writeUInt32LE(0x02014b50, 0); // central directory header signature
    cen.writeUInt16LE(20, 4); // version made by
    cen.writeUInt16LE(20, 6); // version needed
    cen.writeUInt16LE(0x0800, 8);
    cen.writeUInt16LE(0, 10);
    cen.writeUInt32LE(crc, 16);
    cen.writeUInt32LE(data.length, 20);
    cen.writeUInt32LE(data.length, 24);
    cen.writeUInt16LE(nameBuf.length, 28);
    cen.writeUInt32LE(off, 42); // local header offset
    central.push(cen, nameBuf);
    parts.push(local, nameBuf, extra, data);
    off += 30 + nameBuf.length + extra.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); // end of central directory signature
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(off, 16);
  return Buffer.concat([...parts, cd, end]);
}

/** The bytes of a torch.save zip holding `tensors` (PyTorch layout, row-major). */
export function torchZipBytes(tensors: Map<string, TorchTensor>, opts: TorchZipOptions = {}): Buffer {
  const root = opts.root ?? 'archive';
  const names = [...tensors.keys()];
  const shapes = names.map((n) => tensors.get(n)!.shape);
  const entries: [string, Buffer][] = [[`${root}/data.pkl`, statePickle(names, shapes, opts)]];
  entries.push([`${root}/byteorder`, Buffer.from('little')]);
  names.forEach((n, i) => {
    const t = tensors.get(n)!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) throw new Error(`${n}: ${t.data.length} values for shape [${t.shape}]`);
    const raw = opts.dtype === 'F16' ? f32ToF16(t.data) : t.data;
    entries.push([`${root}/data/${i}`, Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)]);
  });
  entries.push([`${root}/version`, Buffer.from('3\n')]);
  return zipStored(entries);
}

export function writeTorchZip(file: string, tensors: Map<string, TorchTensor>, opts: TorchZipOptions = {}): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, torchZipBytes(tensors, opts));
}
