// open_clip pieces: the packed in_proj split (torch's in_proj_weight.chunk(3) rows = q, k, v), the attention built
// on it against a float64 reference of F.multi_head_attention_forward, the config reader (bare and hub forms,
// unsupported options rejected by name, the shipped ViT-H-14), and the key names/shapes of HPSv2's checkpoint.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { openClipConfig, readOpenClipConfig } from '../../src/models/openclip/config.js';
import { OpenClipModel } from '../../src/models/openclip/model.js';
import { argmaxPositions } from '../../src/models/openclip/text.js';
import { chunkInProj, MultiheadAttention } from '../../src/models/openclip/transformer.js';
import { gaussian } from '../../src/optimize/noise.js';
import { loadModule } from '../../src/weights/load.js';
import { MemorySource } from '../../src/weights/source.js';
import { backend, maxRelErr, noLeak, PARITY, tmpDir } from '../helpers.js';

test('chunkInProj: rows [0, D), [D, 2D), [2D, 3D) of in_proj_weight are q, k, v; the bias splits the same way', () => {
  const d = 3;
  const w = Float32Array.from({ length: 3 * d * d }, (_, i) => i); // [9, 3]: row r holds 3r, 3r+1, 3r+2
  const [q, k, v] = chunkInProj(w, d);
  assert.deepEqual([...q], [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...k], [9, 10, 11, 12, 13, 14, 15, 16, 17]);
  assert.deepEqual([...v], [18, 19, 20, 21, 22, 23, 24, 25, 26]);
  const [bq, bk, bv] = chunkInProj(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9), d);
  assert.deepEqual(
    [[...bq], [...bk], [...bv]],
    [
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ],
  );
  assert.throws(() => chunkInProj(new Float32Array(10), d), /not 3 x/);
});

/** F.multi_head_attention_forward in float64 with q/k/v weights taken by chunkInProj (PyTorch [out, in] layout). */
function mhaReference(
  x: Float32Array,
  l: number,
  d: number,
  heads: number,
  w: Float32Array,
  b: Float32Array,
  ow: Float32Array,
  ob: Float32Array,
  causal: boolean,
): Float64Array {
  const [wq, wk, wv] = chunkInProj(w, d);
  const [bq, bk, bv] = chunkInProj(b, d);
  const lin = (wm: Float32Array, bm: Float32Array, src: ArrayLike<number>) => {
    const out = new Float64Array(l * d);
    for (let t = 0; t < l; t++)
      for (let o = 0; o < d; o++) {
        let s = bm[o];
        for (let i = 0; i < d; i++) s += wm[o * d + i] * src[t * d + i];
        out[t * d + o] = s;
      }
    return out;
  };
  const q = lin(wq, bq, x);
  const k = lin(wk, bk, x);
  const v = lin(wv, bv, x);
  const hd = d / heads;
  const ctx = new Float64Array(l * d);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < l; i++) {
      const s = new Float64Array(l);
      let m = -Infinity;
      for (let j = 0; j < l; j++) {
        let dot = 0;
        for (let c = 0; c < hd; c++) dot += q[i * d + h * hd + c] * k[j * d + h * hd + c];
        s[j] = causal && j > i ? -Infinity : dot / Math.sqrt(hd);
        m = Math.max(m, s[j]);
      }
      let z = 0;
      for (let j = 0; j < l; j++) z += s[j] = Math.exp(s[j] - m);
      for (let j = 0; j < l; j++) for (let c = 0; c < hd; c++) ctx[i * d + h * hd + c] += (s[j] / z) * v[j * d + h * hd + c];
    }
  return lin(ow, ob, ctx);
}

test('MultiheadAttention with the packed in_proj equals the chunked q/k/v computation (with and without the causal mask)', async () => {
  await backend('cpu');
  const [l, d, heads] = [5, 12, 3];
  const w = gaussian(3 * d * d, 'w').map((x) => x / Math.sqrt(d));
  const b = gaussian(3 * d, 'b').map((x) => x * 0.1);
  const ow = gaussian(d * d, 'ow').map((x) => x / Math.sqrt(d));
  const ob = gaussian(d, 'ob').map((x) => x * 0.1);
  const x = gaussian(l * d, 'x');
  const attn = new MultiheadAttention(d, heads);
  const src = new MemorySource(
    new Map([
      ['in_proj_weight', { shape: [3 * d, d], data: w }],
      ['in_proj_bias', { shape: [3 * d], data: b }],
      ['out_proj.weight', { shape: [d, d], data: ow }],
      ['out_proj.bias', { shape: [d], data: ob }],
    ]),
  );
  loadModule(attn, src);
  for (const causal of [false, true]) {
    const ref = mhaReference(x, l, d, heads, w, b, ow, ob, causal);
    const ours = await noLeak(() =>
      tf.tidy(() => {
        const mask = causal
          ? tf.tensor(
              Float32Array.from({ length: l * l }, (_, i) => (i % l > Math.floor(i / l) ? -1e9 : 0)),
              [1, 1, l, l],
            )
          : undefined;
        return attn.forward(tf.tensor3d(x, [1, l, d]), mask).dataSync();
      }),
    );
    assert.ok(maxRelErr(ours, ref) < 1e-5, `causal=${causal}: ${maxRelErr(ours, ref)}`);
  }
  attn.dispose();
});

test('argmaxPositions pools at the first largest id (the EOT token)', () => {
  assert.deepEqual(argmaxPositions([49406, 320, 1125, 49407, 0, 0, 7, 9, 9, 1, 0, 0], 2, 6), [3, 1]);
});

test('openClipConfig: heads = width / head_width, mlp = width * mlp_ratio; the hub form {model_cfg} reads the same', () => {
  const bare = JSON.parse(fs.readFileSync(path.join(PARITY, 'openclip_hpsv2', 'open_clip_config.json'), 'utf8'));
  const c = openClipConfig(bare, 'fixture');
  assert.deepEqual(c.vision, { imageSize: 32, patchSize: 8, width: 32, layers: 2, heads: 4, mlpWidth: 128 });
  assert.deepEqual(c.text, { contextLength: 77, vocabSize: 400, width: 32, layers: 2, heads: 4, mlpWidth: 128 });
  assert.equal(c.embedDim, 16);
  assert.equal(c.quickGelu, false);
  assert.deepEqual(openClipConfig({ model_cfg: bare, preprocess_cfg: { mean: [0, 0, 0] } }, 'hub'), c);
  assert.equal(openClipConfig({ ...bare, quick_gelu: true }, 'q').quickGelu, true);
});

test('openClipConfig rejects options reno does not implement, by name', () => {
  const bare = JSON.parse(fs.readFileSync(path.join(PARITY, 'openclip_hpsv2', 'open_clip_config.json'), 'utf8'));
  const bad = [
    [{ ...bare, vision_cfg: { ...bare.vision_cfg, ls_init_value: 1e-5 } }, /ls_init_value/],
    [{ ...bare, vision_cfg: { ...bare.vision_cfg, pool_type: 'avg' } }, /pool_type/],
    [{ ...bare, text_cfg: { ...bare.text_cfg, hf_model_name: 'xlm-roberta-large' } }, /hf_model_name/],
    [{ ...bare, text_cfg: { ...bare.text_cfg, no_causal_mask: true } }, /no_causal_mask/],
    [{ ...bare, vision_cfg: { ...bare.vision_cfg, head_width: 7 } }, /head_width/],
    [{ embed_dim: 4, text_cfg: bare.text_cfg }, /vision_cfg/],
  ] as const;
  for (const [json, re] of bad)
    assert.throws(
      () => openClipConfig(json as Record<string, unknown>, 'bad.json'),
      (e: Error) => e instanceof ConfigError && re.test(e.message) && /bad\.json/.test(e.message),
    );
});

test('the shipped ViT-H-14 config gives HPSv2 checkpoint shapes and 986.1 M parameters; a folder config overrides it', () => {
  const dir = tmpDir('reno-openclip-cfg');
  const c = readOpenClipConfig(dir, 'ViT-H-14');
  assert.equal(c.vision.heads, 16); // 1280 / 80
  assert.equal(c.text.layers, 24);
  const m = new OpenClipModel(c);
  const shapes = new Map(m.namedParams().map(([k, p]) => [k, [...p.torchShape]]));
  const expect: Record<string, number[]> = {
    'visual.conv1.weight': [1280, 3, 14, 14],
    'visual.class_embedding': [1280],
    'visual.positional_embedding': [257, 1280],
    'visual.transformer.resblocks.31.attn.in_proj_weight': [3840, 1280],
    'visual.transformer.resblocks.31.attn.in_proj_bias': [3840],
    'visual.transformer.resblocks.0.mlp.c_fc.weight': [5120, 1280],
    'visual.transformer.resblocks.0.mlp.c_proj.weight': [1280, 5120],
    'visual.proj': [1280, 1024],
    'token_embedding.weight': [49408, 1024],
    positional_embedding: [77, 1024],
    'transformer.resblocks.23.attn.out_proj.weight': [1024, 1024],
    text_projection: [1024, 1024],
    logit_scale: [],
  };
  for (const [k, s] of Object.entries(expect)) assert.deepEqual(shapes.get(k), s, k);
  assert.ok(!shapes.has('visual.transformer.resblocks.32.ln_1.weight') && !shapes.has('transformer.resblocks.24.ln_1.weight'));
  assert.equal(m.paramCount(), 986_109_441);
  assert.equal(m.visual.paramCount(), 632_076_800);
  // the fixture's key list is exactly the model's
  const manifest = JSON.parse(fs.readFileSync(path.join(PARITY, 'openclip_hpsv2', 'manifest.json'), 'utf8'));
  const tiny = new OpenClipModel(openClipConfig(manifest.config, 'manifest'));
  assert.deepEqual(
    tiny
      .namedParams()
      .map(([k]) => k)
      .sort(),
    [...manifest.state_dict_keys].sort(),
  );
  fs.copyFileSync(path.join(PARITY, 'openclip_hpsv2', 'open_clip_config.json'), path.join(dir, 'open_clip_config.json'));
  assert.equal(readOpenClipConfig(dir, 'ViT-H-14').embedDim, 16);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('l2Normalize: unit rows; with the zero guard a zero row stays 0 (aesthetic normalized()) and others are unchanged', async () => {
  await backend('cpu');
  const { l2Normalize } = await import('../../src/models/openclip/model.js');
  const out = await noLeak(() => tf.tidy(() => l2Normalize(tf.tensor2d([3, 4, 0, 0], [2, 2]), true).dataSync()));
  assert.deepEqual([...out], [...Float32Array.of(0.6, 0.8, 0, 0)]);
  const plain = await noLeak(() => tf.tidy(() => l2Normalize(tf.tensor2d([3, 4], [1, 2])).dataSync()));
  assert.deepEqual([...plain], [...out.subarray(0, 2)]);
});
