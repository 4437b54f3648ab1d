// A tiny ZIP writer for tests (PKWARE APPNOTE.TXT 4.3.7 local header, 4.3.12 central directory header, 4.3.14-4.3.16
// end records, 4.5.3 ZIP64 extra field). It can mimic what torch.save writes (caffe2/serialize/inline_container.cc:
// data aligned to 64 bytes by padding the local header's extra field, bit 3 "data descriptor" set, ZIP64 records) and
// can force the ZIP64 forms that only multi-GB checkpoints would otherwise produce.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { crc32 } from 'node:zlib';

export interface ZipWriteOptions {
  /** 'none': plain ZIP; 'records': ZIP64 end records as torch writes them; 'force': also saturate every 32-bit field. */
  zip64?: 'none' | 'records' | 'force';
  /** Pad local headers so that entry data starts at a multiple of this (torch: 64). */
  align?: number;
  /** Set flag bit 3 and write sizes in a data descriptor instead of the local header (as torch does). */
  dataDescriptor?: boolean;
  /** Names of entries to compress with DEFLATE. */
  deflate?: string[];
}

export function zipBytes(entries: Array<[string, Uint8Array]>, opts: ZipWriteOptions = {}): Buffer {
  const zip64 = opts.zip64 ?? 'none';
  const force = zip64 === 'force';
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let off = 0;
  for (const [name, data] of entries) {
    const nameBuf = Buffer.from(name, 'utf8');
    const deflated = opts.deflate?.includes(name) ?? false;
    const body = deflated ? zlib.deflateRawSync(data) : Buffer.from(data);
    const crc = crc32(data);
    const flags = (opts.dataDescriptor ? 0x0008 : 0) | 0x0800;
    let extra: Buffer = Buffer.alloc(0);
    if (opts.align) {
      const pad = (opts.align - ((off + 30 + nameBuf.length + 4) % opts.align)) % opts.align;
      extra = Buffer.alloc(4 + pad, 'Z'.charCodeAt(0));
      extra.writeUInt16LE(0x4246, 0); // 'FB', the id torch uses for its padding field
      extra.writeUInt16LE(pad, 2);
    }
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(force ? 45 : 20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(deflated ? 8 : 0, 8);
    local.writeUInt32LE(opts.dataDescriptor ? 0 : crc, 14);
    local.writeUInt32LE(opts.dataDescriptor ? 0 : body.length, 18);
    local.writeUInt32LE(opts.dataDescriptor ? 0 : data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    local.writeUInt16LE(extra.length, 28);
    parts.push(local, nameBuf, extra, body);
    const localOff = off;
    off += 30 + nameBuf.length + extra.length + body.length;
    if (opts.dataDescriptor) {
      const dd = Buffer.alloc(16);
      dd.writeUInt32LE(0x08074b50, 0);
      dd.writeUInt32LE(crc, 4);
      dd.writeUInt32LE(body.length, 8);
      dd.writeUInt32LE(data.length, 12);
      parts.push(dd);
      off += 16;
    }
    let cdExtra: Buffer = Buffer.alloc(0);
    if (force) {
      cdExtra = Buffer.alloc(28);
      cdExtra.writeUInt16LE(0x0001, 0);
      cdExtra.writeUInt16LE(24, 2);
      cdExtra.writeBigUInt64LE(BigInt(data.length), 4);
      cdExtra.writeBigUInt64LE(BigInt(body.length), 12);
      cdExtra.writeBigUInt64LE(BigInt(localOff), 20);
    }
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(force ? 45 : 20, 4);
    cd.writeUInt16LE(force ? 45 : 20, 6);
    cd.writeUInt16LE(flags, 8);
    cd.writeUInt16LE(deflated ? 8 : 0, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(force ? 0xffffffff : body.length, 20);
    cd.writeUInt32LE(force ? 0xffffffff : data.length, 24);
    cd.writeUInt16LE(nameBuf.length, 28);
    cd.writeUInt16LE(cdExtra.length, 30);
    cd.writeUInt32LE(force ? 0xffffffff : localOff, 42);
    central.push(cd, nameBuf, cdExtra);
  }
  const cdBuf = Buffer.concat(central);
  const cdOffset = off;
  const tail: Buffer[] = [cdBuf];
  if (zip64 !== 'none') {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(entries.length), 24);
    rec.writeBigUInt64LE(BigInt(entries.length), 32);
    rec.writeBigUInt64LE(BigInt(cdBuf.length), 40);
    rec.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(cdOffset + cdBuf.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(rec, loc);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(force ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(force ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(force ? 0xffffffff : cdBuf.length, 12);
  eocd.writeUInt32LE(force ? 0xffffffff : cdOffset, 16);
  tail.push(eocd);
  return Buffer.concat([...parts, ...tail]);
}

export function writeZip(file: string, entries: Array<[string, Uint8Array]>, opts: ZipWriteOptions = {}): void {
  fs.writeFileSync(file, zipBytes(entries, opts));
}

/** A checkpoint in torch.save's layout: `<root>/data.pkl`, `<root>/data/<key>` storages, `<root>/version`. */
export function writeTorchZip(
  file: string,
  root: string,
  pickle: Uint8Array,
  storages: Record<string, Uint8Array> = {},
  opts: ZipWriteOptions = { zip64: 'records', align: 64, dataDescriptor: true },
): void {
  const entries: Array<[string, Uint8Array]> = [[`${root}/data.pkl`, pickle]];
  entries.push([`${root}/byteorder`, Buffer.from('little')]);
  for (const [k, v] of Object.entries(storages)) entries.push([`${root}/data/${k}`, v]);
  entries.push([`${root}/version`, Buffer.from('3\n')]);
  writeZip(file, entries, opts);
}
