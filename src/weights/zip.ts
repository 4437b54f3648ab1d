// A minimal read-only ZIP reader over a file descriptor (format: PKWARE APPNOTE.TXT 6.3, sections 4.3.7 local file
// header, 4.3.12 central directory header, 4.3.14-4.3.16 ZIP64 end of central directory record/locator and end of
// central directory record, 4.5.3 ZIP64 extended information extra field). It is enough for the archives that
// torch.save writes (caffe2/serialize/inline_container.cc PyTorchStreamWriter, built on miniz: STORED entries whose
// data is 64-byte aligned by padding the local header's extra field, bit 3 "data descriptor" set so the local header
// carries no sizes, and ZIP64 records always present). Only the central directory is read up front; entry data is
// read at its offset, so a multi-GB archive never needs a Buffer of its size.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { WeightsError } from '../errors.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
/** Largest entry inflated into memory (DEFLATE entries cannot be read by range). */
const MAX_INFLATE = 512 * 1024 * 1024;
/** fs.readSync reads at most 2 GiB - 1 bytes per call. */
const READ_CHUNK = 1 << 30;

export const ZIP_STORED = 0;
export const ZIP_DEFLATED = 8;

export interface ZipEntry {
  name: string;
  /** Compression method: 0 STORED, 8 DEFLATE (others are refused when read). */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  /** Uncompressed size in bytes. */
  size: number;
  localHeaderOffset: number;
}

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private fd: number | null;
  private readonly fileSize: number;
  private readonly dataOffsets = new Map<string, number>();

  constructor(readonly path: string) {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (e) {
      throw new WeightsError(`cannot open ${path}: ${(e as Error).message}`);
    }
    this.fd = fd;
    try {
      this.fileSize = fs.fstatSync(fd).size;
      this.readCentralDirectory();
    } catch (e) {
      fs.closeSync(fd);
      this.fd = null;
      throw e;
    }
  }

  private fail(why: string): WeightsError {
    return new WeightsError(`${this.path}: ${why}`);
  }

  /** Read exactly `length` bytes at absolute file offset `pos`. */
  readAt(pos: number, length: number): Buffer {
    if (this.fd === null) throw this.fail('file already closed');
    if (pos < 0 || pos + length > this.fileSize)
      throw this.fail(`read of ${length} bytes at offset ${pos} runs past the end of the file (${this.fileSize} bytes): truncated`);
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const got = fs.readSync(this.fd, out, done, Math.min(length - done, READ_CHUNK), pos + done);
      if (got === 0) throw this.fail(`unexpected end of file at offset ${pos + done}: truncated`);
      done += got;
    }
    return out;
  }

  // APPNOTE 4.3.16: the end of central directory record is the last 22 bytes plus a comment of up to 64 KiB, so
  // search backwards for its signature in that window.
  private findEocd(): { pos: number; buf: Buffer } {
    const window = Math.min(this.fileSize, EOCD_SIZE + MAX_COMMENT);
    const buf = this.readAt(this.fileSize - window, window);
    for (let i = window - EOCD_SIZE; i >= 0; i--) {
      if (buf.readUInt32LE(i) !== SIG_EOCD) continue;
      const commentLen = buf.readUInt16LE(i + 20);
      if (i + EOCD_SIZE + commentLen <= window) return { pos: this.fileSize - window + i, buf: buf.subarray(i, i + EOCD_SIZE) };
    }
    throw this.fail(
      `not a ZIP archive or truncated: no end-of-central-directory record in the last ${window} bytes ` +
        `(a torch.save checkpoint is a ZIP file; the file may be incomplete)`,
    );
  }

  private readCentralDirectory(): void {
    if (this.fileSize < EOCD_SIZE) throw this.fail(`not a ZIP archive or truncated: only ${this.fileSize} bytes`);
    const { pos: eocdPos, buf: eocd } = this.findEocd();
    if (eocd.readUInt16LE(4) !== 0 || eocd.readUInt16LE(6) !== 0) throw this.fail('multi-disk (split) ZIP archives are not supported');
    let count = eocd.readUInt16LE(10);
    let cdSize = eocd.readUInt32LE(12);
    let cdOffset = eocd.readUInt32LE(16);
    // APPNOTE 4.3.15: a ZIP64 locator sits right before the EOCD record and points at the ZIP64 EOCD record.
    if (eocdPos >= 20) {
      const loc = this.readAt(eocdPos - 20, 20);
      if (loc.readUInt32LE(0) === SIG_ZIP64_LOCATOR) {
        const z64Pos = toNumber(loc.readBigUInt64LE(8), 'ZIP64 record offset', this);
        const z64 = this.readAt(z64Pos, 56);
        if (z64.readUInt32LE(0) !== SIG_ZIP64_EOCD)
          throw this.fail(`bad ZIP64 end-of-central-directory signature at offset ${z64Pos}: corrupt or truncated`);
        count = toNumber(z64.readBigUInt64LE(32), 'entry count', this);
        cdSize = toNumber(z64.readBigUInt64LE(40), 'central directory size', this);
        cdOffset = toNumber(z64.readBigUInt64LE(48), 'central directory offset', this);
      } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
        throw this.fail('ZIP64 archive without a ZIP64 end-of-central-directory locator: corrupt or truncated');
      }
    }
    if (cdOffset + cdSize > eocdPos)
      throw this.fail(`central directory (offset ${cdOffset}, ${cdSize} bytes) runs past its end record at ${eocdPos}: corrupt or truncated`);
    const cd = this.readAt(cdOffset, cdSize);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) throw this.fail(`central directory entry ${i} is malformed: corrupt archive`);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      if (p + 46 + nameLen + extraLen + commentLen > cd.length)
        throw this.fail(`central directory entry ${i} runs past the directory: corrupt archive`);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      const e: ZipEntry = {
        name,
        flags: cd.readUInt16LE(p + 8),
        method: cd.readUInt16LE(p + 10),
        crc32: cd.readUInt32LE(p + 16),
        compressedSize: cd.readUInt32LE(p + 20),
        size: cd.readUInt32LE(p + 24),
        localHeaderOffset: cd.readUInt32LE(p + 42),
      };
      applyZip64Extra(e, cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen), this);
      if (e.localHeaderOffset + 30 + e.compressedSize > cdOffset)
        throw this.fail(`entry ${name}: data (${e.compressedSize} bytes at ${e.localHeaderOffset}) overlaps the central directory: corrupt archive`);
      this.entries.set(name, e);
      p += 46 + nameLen + extraLen + commentLen;
    }
  }

  entry(name: string): ZipEntry | undefined {
    return this.entries.get(name);
  }

  /** Absolute offset of an entry's data: after its local header, whose extra field torch pads for alignment. */
  dataOffset(e: ZipEntry): number {
    const cached = this.dataOffsets.get(e.name);
    if (cached !== undefined) return cached;
    const h = this.readAt(e.localHeaderOffset, 30);
    if (h.readUInt32LE(0) !== SIG_LOCAL)
      throw this.fail(`entry ${e.name}: bad local header signature at offset ${e.localHeaderOffset}: corrupt archive`);
    const off = e.localHeaderOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
    if (off + e.compressedSize > this.fileSize)
      throw this.fail(
        `entry ${e.name}: data (${e.compressedSize} bytes at ${off}) runs past the end of the file (${this.fileSize} bytes): truncated`,
      );
    this.dataOffsets.set(e.name, off);
    return off;
  }

  private checkMethod(e: ZipEntry): void {
    if (e.flags & 1) throw this.fail(`entry ${e.name} is encrypted`);
    if (e.method !== ZIP_STORED && e.method !== ZIP_DEFLATED)
      throw this.fail(`entry ${e.name}: unsupported compression method ${e.method} (reno reads STORED and DEFLATE)`);
  }

  /** A whole entry, decompressed, with its CRC-32 checked. */
  read(e: ZipEntry): Buffer {
    this.checkMethod(e);
    const raw = this.readAt(this.dataOffset(e), e.compressedSize);
    let out: Buffer = raw;
    if (e.method === ZIP_DEFLATED) {
      if (e.size > MAX_INFLATE) throw this.fail(`entry ${e.name}: compressed entry of ${e.size} bytes is too large to inflate in memory`);
      try {
        out = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(e.size, 1) });
      } catch (err) {
        throw this.fail(`entry ${e.name}: cannot inflate (${(err as Error).message}): corrupt archive`);
      }
    }
    if (out.length !== e.size) throw this.fail(`entry ${e.name}: holds ${out.length} bytes, the directory says ${e.size}: corrupt archive`);
    if (zlib.crc32(out) !== e.crc32) throw this.fail(`entry ${e.name}: CRC-32 mismatch: corrupt archive`);
    return out;
  }

  /** `length` bytes of an entry's uncompressed data from `start`: read in place for STORED entries. */
  readRange(e: ZipEntry, start: number, length: number): Buffer {
    this.checkMethod(e);
    if (start < 0 || length < 0 || start + length > e.size)
      throw this.fail(`entry ${e.name}: bytes ${start}..${start + length} are outside its ${e.size} bytes: corrupt checkpoint`);
    if (e.method === ZIP_STORED) return this.readAt(this.dataOffset(e) + start, length);
    return this.read(e).subarray(start, start + length);
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

// APPNOTE 4.5.3: the ZIP64 extra field (id 0x0001) holds, in this order, only those of uncompressed size, compressed
// size and local header offset whose 32-bit central directory fields are saturated (0xFFFFFFFF).
function applyZip64Extra(e: ZipEntry, extra: Buffer, zip: ZipReader): void {
  const needSize = e.size === 0xffffffff;
  const needComp = e.compressedSize === 0xffffffff;
  const needOff = e.localHeaderOffset === 0xffffffff;
  if (!needSize && !needComp && !needOff) return;
  for (let p = 0; p + 4 <= extra.length;) {
    const id = extra.readUInt16LE(p);
    const len = extra.readUInt16LE(p + 2);
    if (id === 0x0001) {
      let q = p + 4;
      const next = (what: string): number => {
        if (q + 8 > p + 4 + len) throw new WeightsError(`${zip.path}: entry ${e.name}: ZIP64 extra field lacks the ${what}: corrupt archive`);
        const v = toNumber(extra.readBigUInt64LE(q), what, zip);
        q += 8;
        return v;
      };
      if (needSize) e.size = next('uncompressed size');
      if (needComp) e.compressedSize = next('compressed size');
      if (needOff) e.localHeaderOffset = next('local header offset');
      return;
    }
    p += 4 + len;
  }
  throw new WeightsError(`${zip.path}: entry ${e.name}: 32-bit fields are saturated but there is no ZIP64 extra field: corrupt archive`);
}

function toNumber(v: bigint, what: string, zip: { path: string }): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new WeightsError(`${zip.path}: ${what} ${v} is too large: corrupt archive`);
  return Number(v);
}
