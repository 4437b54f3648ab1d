// Single-file Stable Diffusion 2.x checkpoints (e.g. stabilityai/sd-turbo's sd_turbo.safetensors, what AUTOMATIC1111
// and ComfyUI load) opened as the three diffusers components reno's modules are named after: a TensorSource per
// component over the one file, and the inverse (the components as one file's tensors, for writing test and preset
// files). The key table (original name <-> diffusers name) is src/weights/single-file-keys.ts.
import { WeightsError } from '../errors.js';
import { SafetensorsFile } from './safetensors.js';
import { COMPONENTS, mapSingleFileKey, PREFIX, singleFileKey, type Component, type SingleFileLayout } from './single-file-keys.js';
import type { TensorInfo, TensorSource } from './source.js';

export { COMPONENTS, mapSingleFileKey, PREFIX, singleFileKey, type Component, type SingleFileLayout, type Target } from './single-file-keys.js';

/** One component of a single-file checkpoint, by its diffusers names. */
class ComponentSource implements TensorSource {
  readonly path: string;
  constructor(
    private readonly file: TensorSource,
    private readonly entries: Map<string, { from: string; part?: 0 | 1 | 2; squeeze?: boolean }>,
    component: Component,
  ) {
    this.path = `${file.path} (${component}, original key layout)`;
  }
  keys(): string[] {
    return [...this.entries.keys()];
  }
  info(name: string): TensorInfo | undefined {
    const e = this.entries.get(name);
    const i = e && this.file.info(e.from);
    if (!e || !i) return undefined;
    let shape = i.shape;
    if (e.part !== undefined) shape = [shape[0] / 3, ...shape.slice(1)];
    if (e.squeeze && shape.length === 4 && shape[2] === 1 && shape[3] === 1) shape = shape.slice(0, 2);
    return { name, dtype: i.dtype, shape };
  }
  read(name: string): Float32Array {
    const e = this.entries.get(name);
    if (!e) throw new WeightsError(`${this.path}: no tensor ${name}`);
    const all = this.file.read(e.from);
    if (e.part === undefined) return all;
    const n = all.length / 3;
    return all.slice(e.part * n, (e.part + 1) * n);
  }
  close(): void {}
}

export interface SingleFile {
  file: TensorSource;
  components: Record<Component, TensorSource>;
  close(): void;
}

/**
 * Open a single-file checkpoint as three sources. Keys that are not of the SD 2.x layout, packed q/k/v tensors whose
 * first dimension is not divisible by 3, and components that are absent are named in one WeightsError.
 */
export function openSingleFile(
  path: string,
  layout: SingleFileLayout,
  open: (p: string) => TensorSource = (p) => new SafetensorsFile(p),
): SingleFile {
  const file = open(path);
  const entries: Record<Component, Map<string, { from: string; part?: 0 | 1 | 2; squeeze?: boolean }>> = {
    unet: new Map(),
    vae: new Map(),
    text_encoder: new Map(),
  };
  const unknown: string[] = [];
  const bad: string[] = [];
  for (const k of file.keys()) {
    const ts = mapSingleFileKey(k, layout);
    if (ts === null) {
      unknown.push(`${k} [${file.info(k)?.shape.join(', ')}]`);
      continue;
    }
    for (const t of ts) {
      if (t.part !== undefined && (file.info(k)!.shape[0] ?? 0) % 3 !== 0)
        bad.push(`${k}: packed q/k/v with first dimension ${file.info(k)!.shape[0]}, not divisible by 3`);
      entries[t.component].set(t.key, { from: k, part: t.part, squeeze: t.squeeze });
    }
  }
  const absent = COMPONENTS.filter((c) => entries[c].size === 0).map((c) => `${c} (no key under ${PREFIX[c]})`);
  if (unknown.length || bad.length || absent.length) {
    file.close();
    const list = (title: string, items: string[]) =>
      items.length
        ? `${title} (${items.length}):\n${items
            .slice(0, 40)
            .map((s) => `  ${s}`)
            .join('\n')}${items.length > 40 ? `\n  ... and ${items.length - 40} more` : ''}\n`
        : '';
    throw new WeightsError(
      `${path} is not a Stable Diffusion 2.x single-file checkpoint in the original key layout:\n` +
        list('keys of no known component', unknown) +
        list('bad packed tensors', bad) +
        list('missing components', absent),
    );
  }
  const components = Object.fromEntries(COMPONENTS.map((c) => [c, new ComponentSource(file, entries[c], c)])) as unknown as Record<
    Component,
    TensorSource
  >;
  return { file, components, close: () => file.close() };
}

/**
 * The three components (by their diffusers names) as one single file's tensors in the original layout: q/k/v packed
 * into in_proj, the VAE's attention Linear weights as 1x1 convs. For writing test and preset files; every key must
 * have an original name (buffers such as position_ids are skipped with `skip`).
 */
export function toSingleFile(
  components: Record<Component, TensorSource>,
  layout: SingleFileLayout,
  o: { rename?: (c: Component, key: string) => string; skip?: (key: string) => boolean } = {},
): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const packed = new Map<string, { shape: number[]; parts: Float32Array[] }>();
  for (const c of COMPONENTS) {
    const src = components[c];
    for (const k0 of src.keys()) {
      if (o.skip?.(k0)) continue;
      const k = o.rename ? o.rename(c, k0) : k0;
      const to = singleFileKey(c, k, layout);
      if (!to) throw new WeightsError(`${src.path}: ${k} has no name in the original SD layout`);
      const shape = src.info(k0)!.shape;
      const data = src.read(k0);
      if (to.part !== undefined) {
        const p = packed.get(to.key) ?? { shape: [shape[0] * 3, ...shape.slice(1)], parts: [] };
        p.parts[to.part] = data;
        packed.set(to.key, p);
      } else out.set(to.key, { shape: to.unsqueeze && shape.length === 2 ? [...shape, 1, 1] : shape, data });
    }
  }
  for (const [k, p] of packed) {
    if (p.parts.filter(Boolean).length !== 3) throw new WeightsError(`${k}: q, k and v are not all present`);
    const n = p.parts[0].length;
    const data = new Float32Array(3 * n);
    p.parts.forEach((x, i) => data.set(x, i * n));
    out.set(k, { shape: p.shape, data });
  }
  return out;
}
