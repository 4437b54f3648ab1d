// scripts/tiny/torch-zip-writer.ts: what it writes reads back through openWeights (the safe torch reader), with the
// {'state_dict': ...} wrapper stripped as for HPS_v2.1_compressed.pt, fp16 storages widened, the recorded location
// kept; and the tiny HPSv2/aesthetic preset loads into the real model classes.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { writeTinyHpsv2Aesthetic, TINY_HEAD_HIDDEN } from '../../scripts/tiny/hpsv2-aesthetic.js';
import { statePickle, writeTorchZip } from '../../scripts/tiny/torch-zip-writer.js';
import { aestheticHeadSizes } from '../../src/models/aesthetic-head.js';
import { readOpenClipConfig } from '../../src/models/openclip/config.js';
import { loadOpenClip } from '../../src/models/openclip/model.js';
import { openWeights } from '../../src/weights/open.js';
import { unpickle, PyDict, TensorRef } from '../../src/weights/pickle.js';
import { TorchCheckpoint } from '../../src/weights/torch.js';
import { ASSETS, backend, PARITY, tmpDir } from '../helpers.js';

test('torch zip round trip: F32 exact, F16 within half precision, wrapper stripped, shapes/strides/location kept', () => {
  const dir = tmpDir('reno-tzip');
  const st = openWeights(path.join(PARITY, 'openclip_hpsv2', 'open_clip_model.safetensors'));
  const sd = new Map(st.keys().map((k) => [k, { shape: st.info(k)!.shape, data: st.read(k) }]));
  sd.set('scalar', { shape: [], data: Float32Array.of(4.2) });
  sd.set('big', { shape: [70000], data: Float32Array.from({ length: 70000 }, (_, i) => i % 97) }); // BININT numel
  for (const dtype of ['F32', 'F16'] as const) {
    const file = path.join(dir, `m-${dtype}.pt`);
    writeTorchZip(file, sd, { wrapper: 'state_dict', dtype, location: 'cuda:0', root: 'm' });
    const ck = openWeights(file) as TorchCheckpoint;
    assert.equal(ck.wrapper, 'state_dict');
    assert.equal(ck.root, 'm');
    assert.deepEqual(ck.keys(), [...sd.keys()]);
    for (const [k, t] of sd) {
      const info = ck.tensorInfo(k)!;
      assert.deepEqual(info.shape, t.shape, k);
      assert.equal(info.dtype, dtype);
      assert.equal(info.location, 'cuda:0');
      const back = ck.read(k);
      for (let i = 0; i < t.data.length; i++) {
        const tol = dtype === 'F32' ? 0 : Math.abs(t.data[i]) * 2 ** -11 + 2 ** -24;
        assert.ok(Math.abs(back[i] - t.data[i]) <= tol, `${k}[${i}] ${back[i]} vs ${t.data[i]}`);
      }
    }
    ck.close();
  }
  st.close();
  // a bare OrderedDict (no wrapper) as the aesthetic head is saved
  const bare = path.join(dir, 'bare.pth');
  writeTorchZip(bare, new Map([['w', { shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) }]]));
  const b = openWeights(bare) as TorchCheckpoint;
  assert.equal(b.wrapper, null);
  assert.deepEqual([...b.read('w')], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(b.tensorInfo('w')!.stride, [3, 1]);
  b.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('data.pkl is {wrapper: OrderedDict} of _rebuild_tensor_v2 tensors with ("storage", ...) persistent ids', () => {
  const tree = unpickle(statePickle(['a', 'b'], [[2, 2], [3]], { wrapper: 'state_dict', dtype: 'F16' }), 'x.pkl');
  assert.ok(tree instanceof PyDict && tree.type === 'dict');
  const inner = tree.map.get('state_dict');
  assert.ok(inner instanceof PyDict && inner.type === 'OrderedDict');
  const a = inner.map.get('a') as TensorRef;
  const bb = inner.map.get('b') as TensorRef;
  assert.deepEqual([a.shape, a.stride, a.offset, a.dtype, a.storage.key, a.storage.numel], [[2, 2], [2, 1], 0, 'F16', '0', 4]);
  assert.deepEqual([bb.shape, bb.storage.key, bb.storage.location], [[3], '1', 'cpu']);
});

test('the tiny preset: HPS_v2.1_compressed.pt loads strictly into open_clip with its open_clip_config.json; the head follows projection_dim', async () => {
  await backend('cpu');
  const root = tmpDir('reno-tiny-hps');
  const vitL = path.join(root, 'openai', 'clip-vit-large-patch14');
  fs.mkdirSync(vitL, { recursive: true });
  fs.writeFileSync(path.join(vitL, 'config.json'), JSON.stringify({ projection_dim: 24 }));
  writeTinyHpsv2Aesthetic(root, ASSETS);
  const hps = path.join(root, 'xswu', 'HPSv2');
  const cfg = readOpenClipConfig(hps, 'ViT-H-14');
  assert.equal(cfg.vision.imageSize, 224);
  assert.equal(cfg.text.vocabSize, 49408);
  const ck = openWeights(path.join(hps, 'HPS_v2.1_compressed.pt')) as TorchCheckpoint;
  assert.equal(ck.wrapper, 'state_dict');
  assert.equal(ck.info('visual.proj')!.dtype, 'F16');
  const { model, report } = loadOpenClip(ck, cfg);
  assert.equal(report.loaded, model.namedParams().length);
  assert.ok(Math.abs(Math.exp(model.logit_scale.v.dataSync()[0]) - 100) < 0.1);
  model.dispose();
  ck.close();
  const head = openWeights(path.join(root, 'camenduru', 'improved-aesthetic-predictor', 'sac+logos+ava1-l14-linearMSE.pth'));
  assert.deepEqual(aestheticHeadSizes(head), [24, ...TINY_HEAD_HIDDEN, 1]);
  head.close();
  const total = ['xswu/HPSv2/HPS_v2.1_compressed.pt', 'camenduru/improved-aesthetic-predictor/sac+logos+ava1-l14-linearMSE.pth'].reduce(
    (a, f) => a + fs.statSync(path.join(root, f)).size,
    0,
  );
  assert.ok(total < 2.5e6, `preset files take ${total} bytes`);
  fs.rmSync(root, { recursive: true, force: true });
});
