// Open any weights file reno reads, by its name: safetensors (`.safetensors`, or a sharded `.safetensors.index.json`)
// or a PyTorch zip checkpoint written by torch.save (`.pt`, `.pth`, `.bin`, `.ckpt`). Other names are recognised by
// their first bytes: `PK\x03\x04` is a ZIP (torch), an 8-byte length followed by `{` is safetensors.
import * as fs from 'node:fs';
import { WeightsError } from '../errors.js';
import { openSafetensors } from './safetensors.js';
import type { TensorSource } from './source.js';
import { openTorchCheckpoint } from './torch.js';

const TORCH_EXT = ['.pt', '.pth', '.bin', '.ckpt'];

export function openWeights(file: string): TensorSource {
  const lower = file.toLowerCase();
  if (lower.endsWith('.safetensors') || lower.endsWith('.index.json')) return openSafetensors(file);
  if (TORCH_EXT.some((e) => lower.endsWith(e))) return openTorchCheckpoint(file);
  const head = Buffer.alloc(9);
  let got = 0;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      got = fs.readSync(fd, head, 0, 9, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw new WeightsError(`cannot open ${file}: ${(e as Error).message}`);
  }
  if (got >= 4 && head.readUInt32LE(0) === 0x04034b50) return openTorchCheckpoint(file);
  if (got === 9 && head[8] === 0x7b) return openSafetensors(file);
  throw new WeightsError(
    `${file}: unknown weights format (reno reads .safetensors, .safetensors.index.json and torch.save zips: ${TORCH_EXT.join(', ')})`,
  );
}
