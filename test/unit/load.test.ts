import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadTextEncoder, loadUnet } from '../../src/models/sd-turbo/load.js';
import { ConfigError, WeightsError } from '../../src/errors.js';
import { Conv2d, Linear } from '../../src/nn/layers.js';
import { Module } from '../../src/nn/module.js';
import { loadModule, planLoad } from '../../src/weights/load.js';
import { MemorySource } from '../../src/weights/source.js';
import { PARITY, backend, tmpDir } from '../helpers.js';

class Tiny extends Module {
  proj = new Linear(3, 2);
  conv = new Conv2d(2, 4, 3, 1, 1, false);
  blocks = [new Linear(2, 2, false), null, new Linear(2, 5)];
}

const src = (entries: Record<string, number[]>) =>
  new MemorySource(
    new Map(
      Object.entries(entries).map(([k, s]) => [k, { shape: s, data: Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, (_, i) => i) }]),
    ),
    'tiny.safetensors',
  );

const GOOD = {
  'proj.weight': [2, 3],
  'proj.bias': [2],
  'conv.weight': [4, 2, 3, 3],
  'blocks.0.weight': [2, 2],
  'blocks.2.weight': [5, 2],
  'blocks.2.bias': [5],
};

test('module names follow the checkpoint keys (arrays index as .0, .2; null entries hold no weights)', () => {
  assert.deepEqual(
    new Tiny().namedParams().map(([n]) => n),
    Object.keys(GOOD),
  );
});

test('loading converts layouts: Linear [out,in] -> [in,out], Conv2d -> [kh,kw,in,out]', async () => {
  await backend();
  const m = new Tiny();
  loadModule(m, src(GOOD));
  assert.deepEqual(m.proj.weight.v.shape, [3, 2]);
  assert.deepEqual([...m.proj.weight.v.dataSync()], [0, 3, 1, 4, 2, 5]);
  assert.deepEqual(m.conv.weight.v.shape, [3, 3, 2, 4]);
  const y = m.proj.forward(tf.tensor2d([[1, 0, 0]]));
  assert.deepEqual([...y.dataSync()], [0, 4]); // W[:,0] + b = [0, 3] + [0, 1]
  m.dispose();
  y.dispose();
});

test('every missing, unexpected and mis-shaped key is reported at once, with both shapes', () => {
  const bad = { ...GOOD, 'proj.weight': [3, 3], 'extra.weight': [7] } as Record<string, number[]>;
  delete bad['blocks.2.bias'];
  assert.throws(
    () => planLoad(new Tiny(), src(bad)),
    (e: Error) =>
      e instanceof WeightsError &&
      e.message.includes('tiny.safetensors does not match the model') &&
      e.message.includes('missing keys (1):\n  blocks.2.bias [5]') &&
      e.message.includes('unexpected keys (1):\n  extra.weight [7]') &&
      e.message.includes('wrong shapes (1):\n  proj.weight: expected [2, 3], found [3, 3]'),
  );
});

test('prefix, rename, ignore and optional parameters', () => {
  const entries = Object.fromEntries(Object.entries(GOOD).map(([k, v]) => [`model.${k.replace('blocks.0', 'legacy0')}`, v]));
  entries['other.weight'] = [1];
  entries['model.buffer_ids'] = [3];
  const plan = planLoad(new Tiny(), src(entries), {
    prefix: 'model.',
    rename: (k) => k.replace('legacy0', 'blocks.0'),
    ignore: (k) => k === 'buffer_ids',
  });
  assert.equal(plan.plan.size, 6);
  assert.deepEqual(plan.ignored, ['model.buffer_ids']);
});

test('a real fixture loads strictly; a model folder without config.json is one clear error', async () => {
  await backend();
  const te = loadTextEncoder(path.join(PARITY, 'text_encoder'));
  assert.equal(te.config.numLayers, 3);
  te.dispose();
  const d = tmpDir();
  fs.mkdirSync(path.join(d, 'unet'));
  fs.copyFileSync(path.join(PARITY, 'unet', 'diffusion_pytorch_model.safetensors'), path.join(d, 'unet', 'diffusion_pytorch_model.safetensors'));
  assert.throws(
    () => loadUnet(path.join(d, 'unet')),
    (e: Error) => e instanceof ConfigError && /UNet config not found: .*unet\/config\.json/.test(e.message),
  );
  fs.copyFileSync(path.join(PARITY, 'unet', 'config.json'), path.join(d, 'unet', 'config.json'));
  fs.rmSync(path.join(d, 'unet', 'diffusion_pytorch_model.safetensors'));
  assert.throws(() => loadUnet(path.join(d, 'unet')), /no weights in .*unet \(looked for diffusion_pytorch_model\.safetensors/);
});

test('a config with an unsupported option fails naming the key', () => {
  const d = tmpDir();
  const cfg = JSON.parse(fs.readFileSync(path.join(PARITY, 'unet', 'config.json'), 'utf8'));
  cfg.class_embed_type = 'timestep';
  fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(cfg));
  assert.throws(() => loadUnet(d), /"class_embed_type" = "timestep" is not supported/);
});
