// Single-file SD checkpoints (sd_turbo.safetensors, the original key layout A1111 and ComfyUI load): the key mapper
// against names from diffusers' conversion script, then the tiny preset written once as a single file (with the
// inverse mapping) giving the same image as its folder, and a truncated or mis-keyed file named in the error.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { singleFileLayout } from '../../src/models/sd-turbo/load.js';
import { renameLegacyVaeKey } from '../../src/models/sd-turbo/vae.js';
import { generateCommand } from '../../src/commands/generate.js';
import { modelsVerify } from '../../src/commands/models.js';
import { readPngText } from '../../src/image/png.js';
import { openSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { COMPONENTS, mapSingleFileKey, toSingleFile, type Component, type SingleFileLayout } from '../../src/weights/single-file.js';
import { ROOT, tmpDir } from '../helpers.js';
import { writeSingleFile } from '../../scripts/tiny/sd-turbo.js';

const TINY = path.join(ROOT, 'presets', 'tiny', 'stabilityai', 'sd-turbo');
// SD 2.1 / SD-Turbo: 4 levels of 2 resnets, attention on the first three down levels (last three up), 23 text layers
const SD2: SingleFileLayout = {
  unetLayersPerBlock: [2, 2, 2, 2],
  unetDownAttention: [true, true, true, false],
  unetUpAttention: [false, true, true, true],
  vaeLevels: 4,
  textLayers: 23,
};

test('key mapper: original SD 2.x names -> diffusers names, as diffusers converts them', () => {
  const one = (k: string) => {
    const t = mapSingleFileKey(k, SD2);
    assert.ok(t && t.length === 1, `${k} -> ${JSON.stringify(t)}`);
    return `${t[0].component}:${t[0].key}${t[0].squeeze ? ' (1x1 conv)' : ''}`;
  };
  const cases: [string, string][] = [
    ['model.diffusion_model.time_embed.0.weight', 'unet:time_embedding.linear_1.weight'],
    ['model.diffusion_model.time_embed.2.bias', 'unet:time_embedding.linear_2.bias'],
    ['model.diffusion_model.input_blocks.0.0.weight', 'unet:conv_in.weight'],
    ['model.diffusion_model.input_blocks.1.0.in_layers.0.weight', 'unet:down_blocks.0.resnets.0.norm1.weight'],
    ['model.diffusion_model.input_blocks.2.0.emb_layers.1.bias', 'unet:down_blocks.0.resnets.1.time_emb_proj.bias'],
    [
      'model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight',
      'unet:down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight',
    ],
    ['model.diffusion_model.input_blocks.3.0.op.weight', 'unet:down_blocks.0.downsamplers.0.conv.weight'],
    ['model.diffusion_model.input_blocks.4.0.skip_connection.weight', 'unet:down_blocks.1.resnets.0.conv_shortcut.weight'],
    ['model.diffusion_model.input_blocks.11.0.out_layers.3.weight', 'unet:down_blocks.3.resnets.1.conv2.weight'],
    ['model.diffusion_model.middle_block.0.in_layers.2.weight', 'unet:mid_block.resnets.0.conv1.weight'],
    ['model.diffusion_model.middle_block.1.proj_in.weight', 'unet:mid_block.attentions.0.proj_in.weight'],
    ['model.diffusion_model.middle_block.2.out_layers.0.bias', 'unet:mid_block.resnets.1.norm2.bias'],
    ['model.diffusion_model.output_blocks.0.0.skip_connection.weight', 'unet:up_blocks.0.resnets.0.conv_shortcut.weight'],
    ['model.diffusion_model.output_blocks.2.1.conv.weight', 'unet:up_blocks.0.upsamplers.0.conv.weight'],
    ['model.diffusion_model.output_blocks.3.1.norm.weight', 'unet:up_blocks.1.attentions.0.norm.weight'],
    [
      'model.diffusion_model.output_blocks.5.1.transformer_blocks.0.ff.net.0.proj.weight',
      'unet:up_blocks.1.attentions.2.transformer_blocks.0.ff.net.0.proj.weight',
    ],
    ['model.diffusion_model.output_blocks.5.2.conv.bias', 'unet:up_blocks.1.upsamplers.0.conv.bias'],
    ['model.diffusion_model.output_blocks.11.1.proj_out.weight', 'unet:up_blocks.3.attentions.2.proj_out.weight'],
    ['model.diffusion_model.out.0.weight', 'unet:conv_norm_out.weight'],
    ['model.diffusion_model.out.2.bias', 'unet:conv_out.bias'],
    ['first_stage_model.encoder.down.0.block.1.conv2.weight', 'vae:encoder.down_blocks.0.resnets.1.conv2.weight'],
    ['first_stage_model.encoder.down.2.downsample.conv.bias', 'vae:encoder.down_blocks.2.downsamplers.0.conv.bias'],
    ['first_stage_model.encoder.down.1.block.0.nin_shortcut.weight', 'vae:encoder.down_blocks.1.resnets.0.conv_shortcut.weight'],
    ['first_stage_model.encoder.mid.attn_1.q.weight', 'vae:encoder.mid_block.attentions.0.to_q.weight (1x1 conv)'],
    ['first_stage_model.encoder.mid.attn_1.q.bias', 'vae:encoder.mid_block.attentions.0.to_q.bias'],
    ['first_stage_model.decoder.mid.attn_1.proj_out.weight', 'vae:decoder.mid_block.attentions.0.to_out.0.weight (1x1 conv)'],
    ['first_stage_model.decoder.mid.attn_1.norm.bias', 'vae:decoder.mid_block.attentions.0.group_norm.bias'],
    ['first_stage_model.decoder.mid.block_2.norm1.weight', 'vae:decoder.mid_block.resnets.1.norm1.weight'],
    ['first_stage_model.decoder.up.0.block.2.nin_shortcut.weight', 'vae:decoder.up_blocks.3.resnets.2.conv_shortcut.weight'],
    ['first_stage_model.decoder.up.3.upsample.conv.weight', 'vae:decoder.up_blocks.0.upsamplers.0.conv.weight'],
    ['first_stage_model.decoder.norm_out.weight', 'vae:decoder.conv_norm_out.weight'],
    ['first_stage_model.post_quant_conv.weight', 'vae:post_quant_conv.weight'],
    ['cond_stage_model.model.token_embedding.weight', 'text_encoder:text_model.embeddings.token_embedding.weight'],
    ['cond_stage_model.model.positional_embedding', 'text_encoder:text_model.embeddings.position_embedding.weight'],
    ['cond_stage_model.model.ln_final.bias', 'text_encoder:text_model.final_layer_norm.bias'],
    ['cond_stage_model.model.transformer.resblocks.22.ln_1.weight', 'text_encoder:text_model.encoder.layers.22.layer_norm1.weight'],
    ['cond_stage_model.model.transformer.resblocks.0.attn.out_proj.bias', 'text_encoder:text_model.encoder.layers.0.self_attn.out_proj.bias'],
    ['cond_stage_model.model.transformer.resblocks.3.mlp.c_fc.weight', 'text_encoder:text_model.encoder.layers.3.mlp.fc1.weight'],
    ['cond_stage_model.model.transformer.resblocks.3.mlp.c_proj.bias', 'text_encoder:text_model.encoder.layers.3.mlp.fc2.bias'],
  ];
  for (const [from, to] of cases) assert.equal(one(from), to, from);
  // packed q/k/v: three tensors, in that order
  assert.deepEqual(
    mapSingleFileKey('cond_stage_model.model.transformer.resblocks.5.attn.in_proj_weight', SD2)!.map((t) => [t.key, t.part]),
    ['q_proj', 'k_proj', 'v_proj'].map((q, i) => [`text_model.encoder.layers.5.self_attn.${q}.weight`, i]),
  );
  // known and unused: OpenCLIP-H's 24th layer (SD 2.x reads the penultimate one), the CLIP head, training buffers
  for (const k of [
    'cond_stage_model.model.transformer.resblocks.23.mlp.c_fc.weight',
    'cond_stage_model.model.text_projection',
    'cond_stage_model.model.logit_scale',
    'alphas_cumprod',
    'model_ema.decay',
  ])
    assert.deepEqual(mapSingleFileKey(k, SD2), [], k);
  // not of this layout: named by the loader
  for (const k of [
    'conditioner.embedders.0.transformer.text_model.x',
    'model.diffusion_model.input_blocks.12.0.in_layers.0.weight',
    'model.diffusion_model.outt.2.weight',
    'first_stage_model.decoder.up.4.block.0.conv1.weight',
    'cond_stage_model.transformer.text_model.x',
  ])
    assert.equal(mapSingleFileKey(k, SD2), null, k);
});

/** The tiny preset's three components, in the original layout (q/k/v packed, VAE attention as 1x1 convs). */
function singleFileTensors(layout: SingleFileLayout, extra = true): Map<string, { shape: number[]; data: Float32Array }> {
  const files: Record<Component, string> = {
    unet: 'unet/diffusion_pytorch_model.safetensors',
    vae: 'vae/diffusion_pytorch_model.safetensors',
    text_encoder: 'text_encoder/model.safetensors',
  };
  const srcs = Object.fromEntries(COMPONENTS.map((c) => [c, openSafetensors(path.join(TINY, files[c]))])) as Record<
    Component,
    ReturnType<typeof openSafetensors>
  >;
  const out = toSingleFile(srcs, layout, { rename: (c, k) => (c === 'vae' ? renameLegacyVaeKey(k) : k), skip: (k) => k.endsWith('position_ids') });
  for (const s of Object.values(srcs)) s.close();
  if (extra) {
    // what a real single file holds besides: the schedule, OpenCLIP's last layer, the CLIP head
    out.set('alphas_cumprod', { shape: [4], data: new Float32Array([0.9, 0.8, 0.7, 0.6]) });
    out.set(`cond_stage_model.model.transformer.resblocks.${layout.textLayers}.ln_1.weight`, { shape: [16], data: new Float32Array(16).fill(1) });
    out.set('cond_stage_model.model.text_projection', { shape: [16, 16], data: new Float32Array(256) });
    out.set('cond_stage_model.model.logit_scale', { shape: [], data: new Float32Array([4.6]) });
  }
  return out;
}

const OFF = { imagereward: 0, aesthetic: 0, pickscore: 0, clip: 0, hpsv2: 0, personal: 0 };
const run = (out: string, modelFile?: string) =>
  generateCommand({
    prompt: 'a lighthouse',
    preset: 'tiny',
    backend: 'wasm',
    quiet: true,
    out,
    seed: 11,
    noOptimize: true,
    overrides: { weights: OFF },
    ...(modelFile ? { modelFile } : {}),
  });

test('the tiny preset as one single file (original layout) gives the same image as its folder; fp16 nearly so', async () => {
  const layout = singleFileLayout(TINY);
  const d = tmpDir('reno-single');
  const file = path.join(d, 'sd_tiny.safetensors');
  const tensors = singleFileTensors(layout);
  assert.ok([...tensors.keys()].some((k) => k.endsWith('attn.in_proj_weight')));
  assert.ok([...tensors.keys()].some((k) => k.startsWith('first_stage_model.decoder.mid.attn_1.q.weight')));
  writeSafetensors(file, tensors);
  const out = tmpDir();
  const a = await run(out);
  const b = await run(out, file);
  const px = (dir: string) => sharp(path.join(dir, 'best.png')).raw().toBuffer();
  assert.ok((await px(a.dir)).equals(await px(b.dir)), 'same seed, same image from the single file as from the folder');
  const rec = JSON.parse(readPngText(fs.readFileSync(path.join(b.dir, 'best.png'))).reno);
  assert.equal(rec.model.file, 'sd_tiny.safetensors');
  assert.equal(rec.model.sha256, crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
  // --model-file sd-turbo-file: the registry entry's single file, found under --models-dir with its configs
  const models = path.join(d, 'models');
  const repo = path.join(models, 'stabilityai', 'sd-turbo');
  fs.cpSync(TINY, repo, { recursive: true });
  fs.copyFileSync(file, path.join(repo, 'sd_turbo.safetensors'));
  const e = await generateCommand({
    prompt: 'a lighthouse',
    modelsDir: models,
    modelFile: 'sd-turbo-file',
    backend: 'wasm',
    quiet: true,
    out,
    seed: 11,
    noOptimize: true,
    overrides: { weights: OFF },
  });
  assert.ok((await px(e.dir)).equals(await px(a.dir)), 'the registry entry sd-turbo-file loads the same weights');
  assert.equal(JSON.parse(readPngText(fs.readFileSync(path.join(e.dir, 'best.png'))).reno).model.file, 'sd_turbo.safetensors');
  // the file's weights are the ones used: a changed VAE output bias changes the image
  const changed = path.join(d, 'sd_tiny_changed.safetensors');
  const bias = tensors.get('first_stage_model.decoder.conv_out.bias')!;
  writeSafetensors(
    changed,
    new Map([...tensors, ['first_stage_model.decoder.conv_out.bias', { shape: bias.shape, data: bias.data.map((v) => v + 0.5) }]]),
  );
  assert.ok(!(await px((await run(out, changed)).dir)).equals(await px(a.dir)), 'a changed single file changes the image');
  // fp16 weights: the same image within rounding
  const half = path.join(d, 'sd_tiny_fp16.safetensors');
  writeSafetensors(half, tensors, undefined, 'F16');
  const c = await run(out, half);
  const [x, y] = [await px(a.dir), await px(c.dir)];
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  assert.ok(worst <= 8, `fp16 single file differs by up to ${worst}/255`);
});

test('a truncated or mis-keyed single file is an error naming the file and the problem; nothing is written', async () => {
  const layout = singleFileLayout(TINY);
  const d = tmpDir('reno-single');
  const good = path.join(d, 'good.safetensors');
  const tensors = singleFileTensors(layout, false);
  writeSafetensors(good, tensors);
  const out = tmpDir();
  const rejects = async (file: string, ...what: RegExp[]) => {
    await assert.rejects(run(out, file), (e: Error) => {
      assert.equal(e.name, 'WeightsError', e.stack);
      assert.ok(e.message.includes(file), e.message);
      for (const w of what) assert.match(e.message, w);
      return true;
    });
    assert.deepEqual(fs.readdirSync(out), [], 'no run folder');
  };
  const truncated = path.join(d, 'truncated.safetensors');
  const bytes = fs.readFileSync(good);
  fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 1000));
  await rejects(truncated, /truncated/);
  const renamed = path.join(d, 'renamed.safetensors');
  const t2 = new Map([...tensors].map(([k, v]) => [k === 'model.diffusion_model.out.2.weight' ? 'model.diffusion_model.outt.2.weight' : k, v]));
  writeSafetensors(renamed, t2);
  await rejects(renamed, /keys of no known component \(1\):\n\s+model\.diffusion_model\.outt\.2\.weight/);
  const dropped = path.join(d, 'dropped.safetensors');
  writeSafetensors(dropped, new Map([...tensors].filter(([k]) => k !== 'first_stage_model.decoder.conv_out.weight')));
  await rejects(dropped, /vae, original key layout/, /missing keys \(1\):\n\s+decoder\.conv_out\.weight/);
  const noText = path.join(d, 'notext.safetensors');
  writeSafetensors(noText, new Map([...tensors].filter(([k]) => !k.startsWith('cond_stage_model.'))));
  await rejects(noText, /missing components \(1\):\n\s+text_encoder \(no key under cond_stage_model\.model\.\)/);
  await assert.rejects(run(out, path.join(d, 'absent.safetensors')), /--model-file: .*absent\.safetensors not found/);
});

test('sd-turbo-file: the single file written beside the tiny preset gives the folder image; verify finds it, and verifying everything skips it where it was never written', async () => {
  const models = tmpDir('reno-single-entry');
  const repo = path.join(models, 'stabilityai', 'sd-turbo');
  fs.cpSync(TINY, repo, { recursive: true });
  writeSingleFile(repo); // what scripts/tiny/sd-turbo.ts would write: fp16, the original layout
  const out = tmpDir();
  const a = await run(out);
  const b = await generateCommand({
    prompt: 'a lighthouse',
    modelsDir: models,
    modelFile: 'sd-turbo-file',
    backend: 'wasm',
    quiet: true,
    out,
    seed: 11,
    noOptimize: true,
    overrides: { weights: OFF },
  });
  const px = (dir: string) => sharp(path.join(dir, 'best.png')).raw().toBuffer();
  assert.ok((await px(a.dir)).equals(await px(b.dir)));
  const lines: string[] = [];
  const stream = { write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WritableStream;
  const res = await modelsVerify(['sd-turbo-file'], { modelsDir: models, skipSha256: true, out: stream });
  assert.ok(res.length === 1 && res.every((r) => r.ok), lines.join(''));
  // the preset ships no single file: verifying every model skips the entry instead of failing on it, naming it does not
  const all = await modelsVerify([], { modelsDir: path.join(ROOT, 'presets', 'tiny'), skipSha256: true, out: stream });
  assert.ok(all.length > 3 && all.every((r) => r.ok), lines.join(''));
  assert.ok(!all.some((r) => r.name === 'sd-turbo-file'));
  const named = await modelsVerify(['sd-turbo-file'], { modelsDir: path.join(ROOT, 'presets', 'tiny'), skipSha256: true, out: stream });
  assert.ok(!named[0].ok && named[0].problems.some((p) => /sd_turbo\.safetensors: missing/.test(p)), named[0].problems.join('; '));
});
