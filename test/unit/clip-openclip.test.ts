// open_clip checkpoints read as HF CLIPModel keys (src/models/clip/openclip-keys.ts): the openclip_hpsv2 fixture's
// open_clip CLIP (both its safetensors and torch.save files) loaded into reno's ClipModel reproduces open_clip's
// encode_image / encode_text / logits and the per-token ln_post / ln_final states.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as tf from '../../src/runtime/tf.js';
import { openClipAsHf } from '../../src/models/clip/openclip-keys.js';
import { readJsonFile } from '../../src/config/json.js';
import type { ClipConfig } from '../../src/models/clip/config.js';
import { ClipModel } from '../../src/models/clip/model.js';
import { npy } from '../../src/parity/types.js';
import { nhwcTensor, tensorOf } from '../../src/parity/tensors.js';
import { loadModule } from '../../src/weights/load.js';
import { openWeights } from '../../src/weights/open.js';
import { PARITY, backend, maxRelErr, noLeak } from '../helpers.js';

const DIR = path.join(PARITY, 'openclip_hpsv2');

/** open_clip_config.json (embed_dim, vision_cfg, text_cfg) as the equivalent HF CLIPConfig (exact GELU). */
function configOf(oc: { embed_dim: number; vision_cfg: Record<string, number>; text_cfg: Record<string, number> }): ClipConfig {
  const v = oc.vision_cfg;
  const t = oc.text_cfg;
  const p = oc.embed_dim;
  return {
    projectionDim: p,
    logitScaleInit: 2.6592,
    text: {
      vocabSize: t.vocab_size,
      hiddenSize: t.width,
      intermediateSize: t.width * 4,
      numLayers: t.layers,
      numHeads: t.heads,
      maxPositions: t.context_length,
      hiddenAct: 'gelu',
      layerNormEps: 1e-5,
      eosTokenId: 2,
      projectionDim: p,
    },
    vision: {
      hiddenSize: v.width,
      intermediateSize: v.width * v.mlp_ratio,
      numLayers: v.layers,
      numHeads: v.width / v.head_width,
      imageSize: v.image_size,
      patchSize: v.patch_size,
      numChannels: 3,
      hiddenAct: 'gelu',
      layerNormEps: 1e-5,
      projectionDim: p,
    },
  };
}

for (const file of ['open_clip_model.safetensors', 'open_clip_model.pt']) {
  test(`open_clip ${file} through the HF-key view matches open_clip`, async () => {
    await backend('cpu');
    const m = new ClipModel(configOf(readJsonFile(path.join(DIR, 'open_clip_config.json')) as never));
    const src = openClipAsHf(openWeights(path.join(DIR, file)));
    loadModule(m, src, { ignore: (k) => k === 'attn_mask' });
    src.close();
    const ids = tensorOf(npy(DIR, 'text'), 'int32') as tf.Tensor2D;
    const pixels = nhwcTensor(npy(DIR, 'image'));
    await noLeak(() =>
      tf.tidy(() => {
        const out = m.forward(ids, undefined, pixels);
        const checks: [string, tf.Tensor][] = [
          ['image_features_raw', m.getImageFeatures(pixels)],
          ['text_features_raw', m.getTextFeatures(ids)],
          ['image_features', out.imageEmbeds],
          ['text_features', out.textEmbeds],
          ['logits_per_image', out.logitsPerImage],
          ['visual_ln_post', m.vision_model.post_layernorm.forward(out.vision.lastHiddenState)],
          ['text_ln_final', out.text.lastHiddenState],
        ];
        for (const [name, t] of checks) {
          const e = maxRelErr(t.dataSync(), npy(DIR, name).data);
          assert.ok(e < 1e-5, `${name}: rel err ${e}`);
        }
        tf.dispose([out.text.lastHiddenState, out.text.pooled, out.vision.lastHiddenState, out.vision.pooled]);
      }),
    );
    tf.dispose([ids, pixels]);
    m.dispose();
  });
}
