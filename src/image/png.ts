// Images in and out: tensors in [0, 1] <-> PNG (sharp), with PNG text chunks (iTXt, UTF-8) holding run metadata.
import * as tf from '../runtime/tf.js';
import sharp from 'sharp';
import { crc32 } from 'node:zlib';
import { DataError } from '../errors.js';

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** Insert iTXt chunks (keyword -> UTF-8 text) before IEND. */
export function addPngText(png: Buffer, text: Record<string, string>): Buffer {
  const iend = png.lastIndexOf(Buffer.from('IEND', 'latin1')) - 4;
  if (iend < 8) throw new DataError('not a PNG (no IEND chunk)');
  const chunks = Object.entries(text).map(([k, v]) =>
    // keyword \0 compression-flag 0, method 0, language tag "" \0, translated keyword "" \0, text
    chunk('iTXt', Buffer.concat([Buffer.from(k.slice(0, 79), 'latin1'), Buffer.from([0, 0, 0, 0, 0]), Buffer.from(v, 'utf8')])),
  );
  return Buffer.concat([png.subarray(0, iend), ...chunks, png.subarray(iend)]);
}

/** Read tEXt and iTXt chunks of a PNG. */
export function readPngText(png: Buffer): Record<string, string> {
  if (png.length < 8 || png.readUInt32BE(0) !== 0x89504e47) throw new DataError('not a PNG file');
  const out: Record<string, string> = {};
  let off = 8;
  while (off + 8 <= png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === 'tEXt') {
      const z = data.indexOf(0);
      out[data.toString('latin1', 0, z)] = data.toString('latin1', z + 1);
    } else if (type === 'iTXt') {
      const z = data.indexOf(0);
      const key = data.toString('latin1', 0, z);
      let p = z + 3; // skip compression flag and method
      p = data.indexOf(0, p) + 1; // language tag
      p = data.indexOf(0, p) + 1; // translated keyword
      out[key] = data.toString('utf8', p);
    }
    if (type === 'IEND') break;
    off += 12 + len;
  }
  return out;
}

/** image [1, H, W, 3] (or [H, W, 3]) in [0, 1] -> 8-bit RGB bytes, rounding like diffusers' numpy_to_pil. */
export async function toRgbBytes(image: tf.Tensor): Promise<{ data: Buffer; width: number; height: number }> {
  const t = image.rank === 4 ? image.squeeze([0]) : image;
  const [height, width] = t.shape as [number, number, number];
  const v = await t.data();
  if (t !== image) t.dispose();
  const data = Buffer.alloc(v.length);
  for (let i = 0; i < v.length; i++) data[i] = Math.round(Math.min(1, Math.max(0, v[i])) * 255);
  return { data, width, height };
}

export async function encodePng(image: tf.Tensor, text: Record<string, string> = {}): Promise<Buffer> {
  const { data, width, height } = await toRgbBytes(image);
  const png = await sharp(data, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
  return Object.keys(text).length ? addPngText(png, text) : png;
}

/** Read an image file (any format sharp reads) as [1, H, W, 3] float32 in [0, 1]. */
export async function readImage(file: string, size?: { width: number; height: number }): Promise<tf.Tensor4D> {
  let img = sharp(file).removeAlpha().toColourspace('srgb');
  if (size) img = img.resize(size.width, size.height, { fit: 'fill' });
  let raw: { data: Buffer; info: { width: number; height: number } };
  try {
    raw = await img.raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new DataError(`cannot read image ${file}: ${(e as Error).message}`);
  }
  const { data, info } = raw;
  const f = new Float32Array(info.width * info.height * 3);
  for (let i = 0; i < f.length; i++) f[i] = data[i] / 255;
  return tf.tensor4d(f, [1, info.height, info.width, 3]);
}
