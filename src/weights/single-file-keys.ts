// Single-file Stable Diffusion 2.x checkpoints (e.g. stabilityai/sd-turbo's sd_turbo.safetensors, what AUTOMATIC1111
// and ComfyUI load): the original (LDM) key layout, read as the three diffusers components reno's modules are named
// after. This is the key table: a pure key mapper (original name -> diffusers component, name, and which third of a
// packed q/k/v tensor) and its inverse (for writing such a file); src/weights/single-file.ts opens the file with it.
//
// The names follow the conversion that diffusers documents in scripts/convert_original_stable_diffusion_to_diffusers.py
// and src/diffusers/loaders/single_file_utils.py:
//   model.diffusion_model.*  UNet: time_embed.{0,2} -> time_embedding.linear_{1,2}; input_blocks.0.0 -> conv_in;
//     input_blocks.N.{0,1} -> down_blocks.B.{resnets,attentions}.J, input_blocks.N.0.op -> down_blocks.B.downsamplers.0.conv;
//     middle_block.{0,1,2} -> mid_block.{resnets.0,attentions.0,resnets.1}; output_blocks.N.0 -> up_blocks.B.resnets.J,
//     output_blocks.N.1 -> up_blocks.B.attentions.J, output_blocks.N.K.conv -> up_blocks.B.upsamplers.0.conv;
//     out.{0,2} -> conv_norm_out / conv_out; in resnets in_layers.{0,2} -> norm1/conv1, emb_layers.1 -> time_emb_proj,
//     out_layers.{0,3} -> norm2/conv2, skip_connection -> conv_shortcut.
//   first_stage_model.*  VAE: {encoder,decoder}.norm_out -> conv_norm_out; encoder.down.I.block.J -> down_blocks.I.resnets.J,
//     encoder.down.I.downsample -> down_blocks.I.downsamplers.0; decoder.up.I (numbered from the lowest resolution) ->
//     up_blocks.(n-1-I); mid.block_{1,2} -> mid_block.resnets.{0,1}; mid.attn_1.{norm,q,k,v,proj_out} ->
//     mid_block.attentions.0.{group_norm,to_q,to_k,to_v,to_out.0} (1x1 convs there, Linear layers here);
//     nin_shortcut -> conv_shortcut.
//   cond_stage_model.model.*  OpenCLIP text tower -> CLIPTextModel: token_embedding, positional_embedding, ln_final,
//     transformer.resblocks.I.{ln_1,ln_2,attn.out_proj,mlp.c_fc,mlp.c_proj} -> text_model.encoder.layers.I.{layer_norm1,
//     layer_norm2,self_attn.out_proj,mlp.fc1,mlp.fc2}; attn.in_proj_{weight,bias} holds q, k and v stacked on dim 0.
//     Layers past the text encoder's num_hidden_layers (SD 2.x drops the last of OpenCLIP-H's 24) and the CLIP head
//     (text_projection, logit_scale) are not used.

export type Component = 'unet' | 'vae' | 'text_encoder';
export const COMPONENTS: readonly Component[] = ['unet', 'vae', 'text_encoder'];

/** What the index arithmetic needs from the components' configs. */
export interface SingleFileLayout {
  /** the UNet's resnets per down level (diffusers layers_per_block, one per level) */
  unetLayersPerBlock: number[];
  /** which UNet down levels have attention (CrossAttnDownBlock2D) */
  unetDownAttention: boolean[];
  /** which UNet up levels have attention (CrossAttnUpBlock2D), in diffusers' up order */
  unetUpAttention: boolean[];
  /** the VAE's levels (len(block_out_channels)) */
  vaeLevels: number;
  /** the text encoder's layers (num_hidden_layers) */
  textLayers: number;
}

/** One diffusers tensor from an original one: the component, its name there, the third of a packed q/k/v, 1x1 conv -> Linear. */
export interface Target {
  component: Component;
  key: string;
  /** 0, 1, 2: q, k or v of a packed in_proj tensor (rows [part * d, (part + 1) * d)) */
  part?: 0 | 1 | 2;
  /** a [out, in, 1, 1] conv weight read as a [out, in] Linear weight */
  squeeze?: boolean;
}

export const PREFIX: Record<Component, string> = {
  unet: 'model.diffusion_model.',
  vae: 'first_stage_model.',
  text_encoder: 'cond_stage_model.model.',
};

/** Top-level buffers of an LDM checkpoint (the training schedule, the EMA copy) that a pipeline does not load. */
const IGNORED =
  /^(betas|alphas_cumprod|alphas_cumprod_prev|sqrt_alphas_cumprod|sqrt_one_minus_alphas_cumprod|log_one_minus_alphas_cumprod|sqrt_recip_alphas_cumprod|sqrt_recipm1_alphas_cumprod|posterior_variance|posterior_log_variance_clipped|posterior_mean_coef1|posterior_mean_coef2|logvar|model_ema\..*|lvlb_weights)$/;

const RESNET: [string, string][] = [
  ['in_layers.0.', 'norm1.'],
  ['in_layers.2.', 'conv1.'],
  ['emb_layers.1.', 'time_emb_proj.'],
  ['out_layers.0.', 'norm2.'],
  ['out_layers.3.', 'conv2.'],
  ['skip_connection.', 'conv_shortcut.'],
];
const rename = (s: string, pairs: [string, string][], back = false) => {
  for (const [a, b] of pairs) {
    const [from, to] = back ? [b, a] : [a, b];
    if (s.startsWith(from)) return to + s.slice(from.length);
  }
  return null;
};

/** The UNet's block numbering: original input/output block index -> diffusers block, in both directions. */
function unetTables(l: SingleFileLayout) {
  const input = new Map<number, { kind: 'resnet' | 'down'; level: number; j: number }>();
  const n = l.unetLayersPerBlock.length;
  let i = 1;
  for (let b = 0; b < n; b++) {
    for (let j = 0; j < l.unetLayersPerBlock[b]; j++) input.set(i++, { kind: 'resnet', level: b, j });
    if (b < n - 1) input.set(i++, { kind: 'down', level: b, j: 0 });
  }
  const output = new Map<number, { level: number; j: number; last: boolean }>();
  const rev = [...l.unetLayersPerBlock].reverse();
  let o = 0;
  for (let u = 0; u < n; u++) for (let j = 0; j <= rev[u]; j++) output.set(o++, { level: u, j, last: j === rev[u] && u < n - 1 });
  return { input, output };
}

function mapUnet(k: string, l: SingleFileLayout): Target | null {
  const t = (key: string): Target => ({ component: 'unet', key });
  let m: RegExpExecArray | null;
  if ((m = /^time_embed\.([02])\.(weight|bias)$/.exec(k))) return t(`time_embedding.linear_${m[1] === '0' ? 1 : 2}.${m[2]}`);
  if ((m = /^input_blocks\.0\.0\.(weight|bias)$/.exec(k))) return t(`conv_in.${m[1]}`);
  if ((m = /^out\.([02])\.(weight|bias)$/.exec(k))) return t(`${m[1] === '0' ? 'conv_norm_out' : 'conv_out'}.${m[2]}`);
  const { input, output } = unetTables(l);
  if ((m = /^input_blocks\.(\d+)\.([01])\.(.+)$/.exec(k))) {
    const at = input.get(Number(m[1]));
    if (!at) return null;
    if (at.kind === 'down')
      return m[2] === '0' && /^op\.(weight|bias)$/.test(m[3]) ? t(`down_blocks.${at.level}.downsamplers.0.conv.${m[3].slice(3)}`) : null;
    if (m[2] === '0') {
      const r = rename(m[3], RESNET);
      return r ? t(`down_blocks.${at.level}.resnets.${at.j}.${r}`) : null;
    }
    return l.unetDownAttention[at.level] ? t(`down_blocks.${at.level}.attentions.${at.j}.${m[3]}`) : null;
  }
  if ((m = /^middle_block\.([012])\.(.+)$/.exec(k))) {
    if (m[1] === '1') return t(`mid_block.attentions.0.${m[2]}`);
    const r = rename(m[2], RESNET);
    return r ? t(`mid_block.resnets.${m[1] === '0' ? 0 : 1}.${r}`) : null;
  }
  if ((m = /^output_blocks\.(\d+)\.([012])\.(.+)$/.exec(k))) {
    const at = output.get(Number(m[1]));
    if (!at) return null;
    const attn = l.unetUpAttention[at.level];
    const upIndex = attn ? '2' : '1';
    if (m[2] === '0') {
      const r = rename(m[3], RESNET);
      return r ? t(`up_blocks.${at.level}.resnets.${at.j}.${r}`) : null;
    }
    if (at.last && m[2] === upIndex && /^conv\.(weight|bias)$/.test(m[3])) return t(`up_blocks.${at.level}.upsamplers.0.${m[3]}`);
    if (attn && m[2] === '1') return t(`up_blocks.${at.level}.attentions.${at.j}.${m[3]}`);
    return null;
  }
  return null;
}

const VAE_RESNET: [string, string][] = [
  ['norm1.', 'norm1.'],
  ['conv1.', 'conv1.'],
  ['norm2.', 'norm2.'],
  ['conv2.', 'conv2.'],
  ['nin_shortcut.', 'conv_shortcut.'],
];
const VAE_ATTN: [string, string][] = [
  ['norm.', 'group_norm.'],
  ['q.', 'to_q.'],
  ['k.', 'to_k.'],
  ['v.', 'to_v.'],
  ['proj_out.', 'to_out.0.'],
];

function mapVae(k: string, l: SingleFileLayout): Target | null {
  const t = (key: string, squeeze = false): Target => ({ component: 'vae', key, ...(squeeze ? { squeeze } : {}) });
  let m: RegExpExecArray | null;
  if ((m = /^(quant_conv|post_quant_conv)\.(weight|bias)$/.exec(k))) return t(k);
  if ((m = /^(encoder|decoder)\.(conv_in|conv_out)\.(weight|bias)$/.exec(k))) return t(k);
  if ((m = /^(encoder|decoder)\.norm_out\.(weight|bias)$/.exec(k))) return t(`${m[1]}.conv_norm_out.${m[2]}`);
  if ((m = /^(encoder|decoder)\.mid\.block_([12])\.(.+)$/.exec(k))) {
    const r = rename(m[3], VAE_RESNET);
    return r ? t(`${m[1]}.mid_block.resnets.${Number(m[2]) - 1}.${r}`) : null;
  }
  if ((m = /^(encoder|decoder)\.mid\.attn_1\.(.+)$/.exec(k))) {
    const r = rename(m[2], VAE_ATTN);
    return r ? t(`${m[1]}.mid_block.attentions.0.${r}`, r.endsWith('.weight') && !r.startsWith('group_norm.')) : null;
  }
  if ((m = /^encoder\.down\.(\d+)\.(block\.(\d+)\.(.+)|downsample\.conv\.(weight|bias))$/.exec(k))) {
    if (Number(m[1]) >= l.vaeLevels) return null;
    if (m[5]) return t(`encoder.down_blocks.${m[1]}.downsamplers.0.conv.${m[5]}`);
    const r = rename(m[4], VAE_RESNET);
    return r ? t(`encoder.down_blocks.${m[1]}.resnets.${m[3]}.${r}`) : null;
  }
  if ((m = /^decoder\.up\.(\d+)\.(block\.(\d+)\.(.+)|upsample\.conv\.(weight|bias))$/.exec(k))) {
    const i = Number(m[1]);
    if (i >= l.vaeLevels) return null;
    const u = l.vaeLevels - 1 - i;
    if (m[5]) return t(`decoder.up_blocks.${u}.upsamplers.0.conv.${m[5]}`);
    const r = rename(m[4], VAE_RESNET);
    return r ? t(`decoder.up_blocks.${u}.resnets.${m[3]}.${r}`) : null;
  }
  return null;
}

const TEXT_LAYER: [string, string][] = [
  ['ln_1.', 'layer_norm1.'],
  ['ln_2.', 'layer_norm2.'],
  ['attn.out_proj.', 'self_attn.out_proj.'],
  ['mlp.c_fc.', 'mlp.fc1.'],
  ['mlp.c_proj.', 'mlp.fc2.'],
];
const QKV = ['q_proj', 'k_proj', 'v_proj'] as const;

/** Text keys: a list (in_proj packs three), [] for keys that are not used (layers past num_hidden_layers, the CLIP head). */
function mapText(k: string, l: SingleFileLayout): Target[] | null {
  const t = (key: string, part?: 0 | 1 | 2): Target => ({
    component: 'text_encoder',
    key: `text_model.${key}`,
    ...(part !== undefined ? { part } : {}),
  });
  if (k === 'token_embedding.weight') return [t('embeddings.token_embedding.weight')];
  if (k === 'positional_embedding') return [t('embeddings.position_embedding.weight')];
  const m0 = /^ln_final\.(weight|bias)$/.exec(k);
  if (m0) return [t(`final_layer_norm.${m0[1]}`)];
  if (k === 'text_projection' || k === 'logit_scale') return [];
  const m = /^transformer\.resblocks\.(\d+)\.(.+)$/.exec(k);
  if (!m) return null;
  const i = Number(m[1]);
  if (i >= l.textLayers) return [];
  const pre = `encoder.layers.${i}.`;
  const p = /^attn\.in_proj_(weight|bias)$/.exec(m[2]);
  if (p) return QKV.map((q, part) => t(`${pre}self_attn.${q}.${p[1]}`, part as 0 | 1 | 2));
  const r = rename(m[2], TEXT_LAYER);
  return r ? [t(pre + r)] : null;
}

/**
 * An original key -> the diffusers tensors it holds: [] when the key is known and not used (training buffers, the
 * EMA copy, the CLIP head, OpenCLIP layers the pipeline skips), null when the key is not one of the layout's.
 */
export function mapSingleFileKey(key: string, layout: SingleFileLayout): Target[] | null {
  if (key.startsWith(PREFIX.unet)) {
    const t = mapUnet(key.slice(PREFIX.unet.length), layout);
    return t ? [t] : null;
  }
  if (key.startsWith(PREFIX.vae)) {
    const t = mapVae(key.slice(PREFIX.vae.length), layout);
    return t ? [t] : null;
  }
  if (key.startsWith(PREFIX.text_encoder)) return mapText(key.slice(PREFIX.text_encoder.length), layout);
  if (key.startsWith('cond_stage_model.')) return null;
  return IGNORED.test(key) ? [] : null;
}

/** The inverse, for writing a single file from diffusers components: a diffusers key -> its original key (q/k/v: the packed one). */
export function singleFileKey(
  component: Component,
  key: string,
  layout: SingleFileLayout,
): { key: string; part?: 0 | 1 | 2; unsqueeze?: boolean } | null {
  // search the original names this component's key could come from: each mapping above is one-to-one per name
  for (const cand of candidates(component, key, layout)) {
    const ts = mapSingleFileKey(cand, layout);
    const hit = ts?.find((x) => x.component === component && x.key === key);
    if (hit) return { key: cand, ...(hit.part !== undefined ? { part: hit.part } : {}), ...(hit.squeeze ? { unsqueeze: true } : {}) };
  }
  return null;
}

/** The original names a diffusers key may map from (the forward mapper decides which one does). */
function candidates(component: Component, key: string, l: SingleFileLayout): string[] {
  const p = PREFIX[component];
  const out: string[] = [];
  let m: RegExpExecArray | null;
  if (component === 'text_encoder') {
    const k = key.replace(/^text_model\./, '');
    if (k === 'embeddings.token_embedding.weight') return [p + 'token_embedding.weight'];
    if (k === 'embeddings.position_embedding.weight') return [p + 'positional_embedding'];
    if ((m = /^final_layer_norm\.(weight|bias)$/.exec(k))) return [p + `ln_final.${m[1]}`];
    if ((m = /^encoder\.layers\.(\d+)\.self_attn\.[qkv]_proj\.(weight|bias)$/.exec(k)))
      return [p + `transformer.resblocks.${m[1]}.attn.in_proj_${m[2]}`];
    if ((m = /^encoder\.layers\.(\d+)\.(.+)$/.exec(k))) {
      const r = rename(m[2], TEXT_LAYER, true);
      if (r) out.push(p + `transformer.resblocks.${m[1]}.${r}`);
    }
    return out;
  }
  if (component === 'vae') {
    const rev = (s: string, pairs: [string, string][]) => rename(s, pairs, true);
    if ((m = /^(quant_conv|post_quant_conv|(?:encoder|decoder)\.(?:conv_in|conv_out))\.(weight|bias)$/.exec(key))) return [p + key];
    if ((m = /^(encoder|decoder)\.conv_norm_out\.(weight|bias)$/.exec(key))) return [p + `${m[1]}.norm_out.${m[2]}`];
    if ((m = /^(encoder|decoder)\.mid_block\.resnets\.([01])\.(.+)$/.exec(key))) {
      const r = rev(m[3], VAE_RESNET);
      return r ? [p + `${m[1]}.mid.block_${Number(m[2]) + 1}.${r}`] : [];
    }
    if ((m = /^(encoder|decoder)\.mid_block\.attentions\.0\.(.+)$/.exec(key))) {
      const r = rev(m[2], VAE_ATTN);
      return r ? [p + `${m[1]}.mid.attn_1.${r}`] : [];
    }
    if ((m = /^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)$/.exec(key)))
      return [p + `encoder.down.${m[1]}.downsample.conv.${m[2]}`];
    if ((m = /^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(key))) {
      const r = rev(m[3], VAE_RESNET);
      return r ? [p + `encoder.down.${m[1]}.block.${m[2]}.${r}`] : [];
    }
    if ((m = /^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)$/.exec(key)))
      return [p + `decoder.up.${l.vaeLevels - 1 - Number(m[1])}.upsample.conv.${m[2]}`];
    if ((m = /^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(key))) {
      const r = rev(m[3], VAE_RESNET);
      return r ? [p + `decoder.up.${l.vaeLevels - 1 - Number(m[1])}.block.${m[2]}.${r}`] : [];
    }
    return [];
  }
  // unet
  if ((m = /^time_embedding\.linear_([12])\.(weight|bias)$/.exec(key))) return [p + `time_embed.${m[1] === '1' ? 0 : 2}.${m[2]}`];
  if ((m = /^conv_in\.(weight|bias)$/.exec(key))) return [p + `input_blocks.0.0.${m[1]}`];
  if ((m = /^conv_norm_out\.(weight|bias)$/.exec(key))) return [p + `out.0.${m[1]}`];
  if ((m = /^conv_out\.(weight|bias)$/.exec(key))) return [p + `out.2.${m[1]}`];
  const { input, output } = unetTables(l);
  if ((m = /^down_blocks\.(\d+)\.(resnets|attentions|downsamplers)\.(\d+)\.(.+)$/.exec(key))) {
    const [level, kind, j, rest] = [Number(m[1]), m[2], Number(m[3]), m[4]];
    for (const [i, at] of input) {
      if (at.level !== level) continue;
      if (kind === 'downsamplers' && at.kind === 'down') out.push(p + `input_blocks.${i}.0.op.${rest.replace(/^conv\./, '')}`);
      if (kind === 'resnets' && at.kind === 'resnet' && at.j === j) {
        const r = rename(rest, RESNET, true);
        if (r) out.push(p + `input_blocks.${i}.0.${r}`);
      }
      if (kind === 'attentions' && at.kind === 'resnet' && at.j === j) out.push(p + `input_blocks.${i}.1.${rest}`);
    }
    return out;
  }
  if ((m = /^mid_block\.attentions\.0\.(.+)$/.exec(key))) return [p + `middle_block.1.${m[1]}`];
  if ((m = /^mid_block\.resnets\.([01])\.(.+)$/.exec(key))) {
    const r = rename(m[2], RESNET, true);
    return r ? [p + `middle_block.${m[1] === '0' ? 0 : 2}.${r}`] : [];
  }
  if ((m = /^up_blocks\.(\d+)\.(resnets|attentions|upsamplers)\.(\d+)\.(.+)$/.exec(key))) {
    const [level, kind, j, rest] = [Number(m[1]), m[2], Number(m[3]), m[4]];
    for (const [i, at] of output) {
      if (at.level !== level) continue;
      if (kind === 'resnets' && at.j === j) {
        const r = rename(rest, RESNET, true);
        if (r) out.push(p + `output_blocks.${i}.0.${r}`);
      }
      if (kind === 'attentions' && at.j === j) out.push(p + `output_blocks.${i}.1.${rest}`);
      if (kind === 'upsamplers' && at.last) for (const k of ['1', '2']) out.push(p + `output_blocks.${i}.${k}.${rest}`);
    }
    return out;
  }
  return out;
}
