// A read-only view of an open_clip CLIP checkpoint (open_clip model.py CLIP / transformer.py VisionTransformer,
// TextTransformer; e.g. laion's open_clip_pytorch_model.bin) under Hugging Face CLIPModel key names, so the same
// ClipModel loads either file. It follows transformers' convert_clip_original_pytorch_to_hf.py: the fused
// attn.in_proj_{weight,bias} rows split into q, k, v; visual.proj / text_projection (used as x @ proj) transposed
// into Linear weights; everything else renamed one to one. Unmapped keys keep their names (strict loading reports).
import type { TensorInfo, TensorSource } from '../../weights/source.js';

type Op = { kind: 'copy' } | { kind: 'chunk'; index: number; of: number } | { kind: 'transpose' };
interface Mapping {
  from: string;
  op: Op;
}

const LAYER_PARTS: [RegExp, string][] = [
  [/^ln_1\.(weight|bias)$/, 'layer_norm1.$1'],
  [/^ln_2\.(weight|bias)$/, 'layer_norm2.$1'],
  [/^attn\.out_proj\.(weight|bias)$/, 'self_attn.out_proj.$1'],
  [/^mlp\.c_fc\.(weight|bias)$/, 'mlp.fc1.$1'],
  [/^mlp\.c_proj\.(weight|bias)$/, 'mlp.fc2.$1'],
];

const TOP: Record<string, string> = {
  'token_embedding.weight': 'text_model.embeddings.token_embedding.weight',
  positional_embedding: 'text_model.embeddings.position_embedding.weight',
  'ln_final.weight': 'text_model.final_layer_norm.weight',
  'ln_final.bias': 'text_model.final_layer_norm.bias',
  logit_scale: 'logit_scale',
  'visual.class_embedding': 'vision_model.embeddings.class_embedding',
  'visual.conv1.weight': 'vision_model.embeddings.patch_embedding.weight',
  'visual.positional_embedding': 'vision_model.embeddings.position_embedding.weight',
  'visual.ln_pre.weight': 'vision_model.pre_layrnorm.weight',
  'visual.ln_pre.bias': 'vision_model.pre_layrnorm.bias',
  'visual.ln_post.weight': 'vision_model.post_layernorm.weight',
  'visual.ln_post.bias': 'vision_model.post_layernorm.bias',
};

const PROJ: Record<string, string> = { text_projection: 'text_projection.weight', 'visual.proj': 'visual_projection.weight' };

/** HF names for one open_clip key (several for a fused in_proj). */
function hfNames(key: string): [string, Op][] {
  if (TOP[key]) return [[TOP[key], { kind: 'copy' }]];
  if (PROJ[key]) return [[PROJ[key], { kind: 'transpose' }]];
  const m = /^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const base = `${m[1] ? 'vision_model' : 'text_model'}.encoder.layers.${m[2]}.`;
    const fused = /^attn\.in_proj_(weight|bias)$/.exec(m[3]);
    if (fused) return ['q_proj', 'k_proj', 'v_proj'].map((p, i) => [`${base}self_attn.${p}.${fused[1]}`, { kind: 'chunk', index: i, of: 3 }]);
    for (const [re, to] of LAYER_PARTS) if (re.test(m[3])) return [[base + m[3].replace(re, to), { kind: 'copy' }]];
  }
  return [[key, { kind: 'copy' }]];
}

export function openClipAsHf(src: TensorSource): TensorSource {
  const map = new Map<string, Mapping>();
  for (const k of src.keys()) for (const [name, op] of hfNames(k)) map.set(name, { from: k, op });
  const infoOf = (name: string): TensorInfo | undefined => {
    const m = map.get(name);
    const i = m && src.info(m.from);
    if (!m || !i) return undefined;
    const shape =
      m.op.kind === 'chunk' ? [i.shape[0] / m.op.of, ...i.shape.slice(1)] : m.op.kind === 'transpose' ? [i.shape[1], i.shape[0]] : i.shape;
    return { name, dtype: i.dtype, shape };
  };
  return {
    path: `${src.path} (open_clip keys read as CLIPModel keys)`,
    keys: () => [...map.keys()],
    info: infoOf,
    read(name: string): Float32Array {
      const m = map.get(name);
      if (!m) throw new Error(`no tensor ${name} in ${src.path}`);
      const data = src.read(m.from);
      const shape = src.info(m.from)!.shape;
      if (m.op.kind === 'copy') return data;
      if (m.op.kind === 'chunk') {
        const n = data.length / m.op.of;
        return data.slice(m.op.index * n, (m.op.index + 1) * n); // rows [i*D, (i+1)*D) of [3D, ...]
      }
      const [r, c] = shape; // [in, out] -> [out, in]
      const out = new Float32Array(r * c);
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = data[i * c + j];
      return out;
    },
    close: () => src.close(),
  };
}
