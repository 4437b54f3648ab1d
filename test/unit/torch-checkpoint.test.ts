// PyTorch zip checkpoints: the restricted unpickler, the ZIP reader and strided tensor reads
// (src/weights/{zip,pickle,torch,open}.ts).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { WeightsError } from '../../src/errors.js';
import { openWeights } from '../../src/weights/open.js';
import { SafetensorsFile } from '../../src/weights/safetensors.js';
import { TorchCheckpoint, openTorchCheckpoint } from '../../src/weights/torch.js';
import { ASSETS, PARITY, tmpDir } from '../helpers.js';
import { writeTorchZip, writeZip, type ZipWriteOptions } from './zip-writer.js';

/** Pickle bytes written opcode by opcode (names as in CPython Lib/pickle.py). */
class Pk {
  private readonly parts: Buffer[] = [];
  constructor(private readonly stackGlobal = false) {}
  op(code: number, ...payload: Buffer[]): this {
    this.parts.push(Buffer.from([code]), ...payload);
    return this;
  }
  proto(n: number) {
    return this.op(0x80, Buffer.from([n]));
  }
  mark() {
    return this.op(0x28);
  }
  stop() {
    return this.op(0x2e);
  }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    if (b.length < 256) return this.op(0x8c, Buffer.from([b.length]), b); // SHORT_BINUNICODE
    const n = Buffer.alloc(4);
    n.writeUInt32LE(b.length);
    return this.op(0x58, n, b); // BINUNICODE
  }
  int(v: number) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return this.op(0x4a, b); // BININT
  }
  float(v: number) {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    return this.op(0x47, b); // BINFLOAT
  }
  global(module: string, name: string) {
    if (this.stackGlobal) return this.str(module).str(name).op(0x93); // STACK_GLOBAL
    return this.op(0x63, Buffer.from(`${module}\n${name}\n`, 'latin1')); // GLOBAL
  }
  tuple(...ints: number[]) {
    this.mark();
    for (const i of ints) this.int(i);
    return this.op(0x74); // TUPLE
  }
  emptyDict() {
    return this.op(0x7d);
  }
  ordered() {
    return this.global('collections', 'OrderedDict').op(0x29).op(0x52);
  } // OrderedDict()
  setitem() {
    return this.op(0x73);
  }
  /** torch/_utils.py _rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict()). */
  tensor(storageType: string, key: string, numel: number, offset: number, shape: number[], stride: number[], location = 'cpu') {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    return this.tensorArgs(storageType, key, numel, offset, shape, stride, location).op(0x74).op(0x52); // TUPLE, REDUCE
  }
  /** The items of _rebuild_tensor_v2's argument tuple (no MARK/TUPLE around them). */
  tensorArgs(storageType: string, key: string, numel: number, offset: number, shape: number[], stride: number[], location = 'cpu') {
    this.mark()
      .str('storage')
      .global(storageType === 'UntypedStorage' ? 'torch.storage' : 'torch', storageType);
    this.str(key).str(location).int(numel).op(0x74).op(0x51); // TUPLE, BINPERSID
    return this.int(offset)
      .tuple(...shape)
      .tuple(...stride)
      .op(0x89)
      .ordered(); // NEWFALSE, backward hooks
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);

function rejects(fn: () => unknown, pattern: RegExp, file: string): WeightsError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof WeightsError, `expected a WeightsError, got ${String(err)}`);
  assert.match(err.message, pattern);
  assert.ok(err.message.includes(file), `the message names the file: ${err.message}`);
  return err;
}

function sameAsSafetensors(pt: TorchCheckpoint, st: SafetensorsFile): void {
  assert.deepEqual([...pt.keys()].sort(), [...st.keys()].sort(), 'the .pt and .safetensors keys are the same names, no prefix');
  for (const k of st.keys()) {
    assert.deepEqual(pt.info(k), st.info(k), k);
    assert.deepEqual(pt.read(k), st.read(k), k);
  }
}

describe('torch.save checkpoints: fixtures', () => {
  it('ImageReward_tiny.pt equals ImageReward_tiny.safetensors, key for key (a plain state dict)', () => {
    const pt = openTorchCheckpoint(path.join(PARITY, 'imagereward', 'ImageReward_tiny.pt'));
    const st = new SafetensorsFile(path.join(PARITY, 'imagereward', 'ImageReward_tiny.safetensors'));
    try {
      assert.equal(pt.root, 'ImageReward_tiny');
      assert.equal(pt.wrapper, null);
      assert.equal(pt.keys().length, 101);
      assert.equal(pt.info('blip.text_encoder.embeddings.position_ids')?.dtype, 'I64'); // a LongStorage
      sameAsSafetensors(pt, st);
    } finally {
      pt.close();
      st.close();
    }
  });

  it("open_clip_model.pt ({'state_dict': ...}, as HPS_v2.1_compressed.pt) equals its .safetensors once unwrapped", () => {
    const pt = openTorchCheckpoint(path.join(PARITY, 'openclip_hpsv2', 'open_clip_model.pt'));
    const st = new SafetensorsFile(path.join(PARITY, 'openclip_hpsv2', 'open_clip_model.safetensors'));
    try {
      assert.equal(pt.root, 'open_clip_model');
      assert.equal(pt.wrapper, 'state_dict');
      assert.ok(pt.keys().includes('positional_embedding') && !pt.keys().some((k) => k.startsWith('state_dict.')));
      sameAsSafetensors(pt, st);
    } finally {
      pt.close();
      st.close();
    }
  });

  it('the LAION aesthetic head (.pth, archive/ root, cuda:0 storages) loads with the documented shapes and values', () => {
    const file = path.join(ASSETS, 'sac+logos+ava1-l14-linearMSE.pth');
    const pt = openWeights(file);
    try {
      assert.ok(pt instanceof TorchCheckpoint);
      assert.equal(pt.root, 'archive');
      const shapes = Object.fromEntries(pt.keys().map((k) => [k, pt.info(k)?.shape]));
      assert.deepEqual(shapes, {
        'layers.0.weight': [1024, 768],
        'layers.0.bias': [1024],
        'layers.2.weight': [128, 1024],
        'layers.2.bias': [128],
        'layers.4.weight': [64, 128],
        'layers.4.bias': [64],
        'layers.6.weight': [16, 64],
        'layers.6.bias': [16],
        'layers.7.weight': [1, 16],
        'layers.7.bias': [1],
      });
      assert.equal(pt.tensorInfo('layers.0.weight')?.location, 'cuda:0');
      // Reference numbers: python3 zipfile.ZipFile(file).read('archive/data/<key>') + struct.unpack('<f', ...), with the
      // storage keys taken from `python3 -m pickletools` on archive/data.pkl (layers.0.weight -> '0', layers.7.* -> '8', '9').
      const w0 = pt.read('layers.0.weight');
      assert.equal(w0.length, 1024 * 768);
      assert.deepEqual([...w0.subarray(0, 3)], [-0.12625516951084137, -0.003088847966864705, 0.04368017613887787]);
      assert.equal(w0[5 * 768 + 7], -0.027391456067562103);
      assert.equal(w0[w0.length - 1], -0.049428436905145645);
      assert.deepEqual([...pt.read('layers.7.weight').subarray(0, 3)], [0.24315302073955536, 0.2866540253162384, -0.5220841765403748]);
      assert.deepEqual([...pt.read('layers.7.bias')], [0.9899932146072388]);
      assert.ok(Math.abs(pt.read('layers.6.bias').reduce((a, b) => a + b, 0) - 7.606064677238464) < 1e-5);
    } finally {
      pt.close();
    }
  });

  it('openWeights picks the reader by extension, or by the first bytes', () => {
    const st = openWeights(path.join(PARITY, 'imagereward', 'ImageReward_tiny.safetensors'));
    assert.ok(st instanceof SafetensorsFile);
    st.close();
    const dir = tmpDir('reno-torch');
    const odd = path.join(dir, 'weights.data');
    fs.copyFileSync(path.join(ASSETS, 'sac+logos+ava1-l14-linearMSE.pth'), odd);
    const pt = openWeights(odd);
    assert.ok(pt instanceof TorchCheckpoint);
    pt.close();
    const junk = path.join(dir, 'weights.xyz');
    fs.writeFileSync(junk, 'hello world');
    rejects(() => openWeights(junk), /unknown weights format/, junk);
  });
});

describe('torch.save checkpoints: strided views, dtypes, layouts', () => {
  // One float storage 0..5 and views on it: torch.arange(6.).view(2, 3) and friends.
  function viewsPickle(stackGlobal: boolean): Buffer {
    const p = new Pk(stackGlobal)
      .proto(stackGlobal ? 4 : 2)
      .ordered()
      .mark();
    p.str('full').tensor('FloatStorage', '0', 6, 0, [2, 3], [3, 1]);
    p.str('transposed').tensor('FloatStorage', '0', 6, 0, [3, 2], [1, 3]); // .t()
    p.str('column').tensor('FloatStorage', '0', 6, 1, [2], [3]); // [:, 1]
    p.str('tail').tensor('FloatStorage', '0', 6, 4, [2], [1]); // .view(-1)[4:]
    p.str('expanded').tensor('FloatStorage', '0', 6, 1, [2, 3], [0, 1]); // [0, 1:].expand(2, 3)
    p.str('scalar').tensor('FloatStorage', '0', 6, 5, [], []);
    p.str('half').tensor('HalfStorage', '1', 3, 0, [3], [1]);
    p.str('bf16').tensor('BFloat16Storage', '2', 2, 0, [1, 2], [2, 1]);
    p.str('long').tensor('LongStorage', '3', 2, 0, [2, 1], [1, 2]);
    p.str('double').tensor('DoubleStorage', '4', 4, 0, [2, 2], [1, 2], 'cuda:1');
    return p.op(0x75).stop().bytes(); // SETITEMS
  }
  const storages = {
    '0': f32(0, 1, 2, 3, 4, 5),
    '1': new Uint8Array(Uint16Array.from([0x3c00, 0xc000, 0x3800]).buffer), // 1, -2, 0.5
    '2': new Uint8Array(Uint16Array.from([0x3f80, 0xc040]).buffer), // 1, -3
    '3': new Uint8Array(BigInt64Array.from([7n, -9n]).buffer),
    '4': new Uint8Array(Float64Array.from([1.5, 2.5, 3.5, 4.5]).buffer),
  };
  const layouts: Array<[string, ZipWriteOptions, boolean]> = [
    ['torch-like (ZIP64 records, 64-byte alignment, data descriptors), GLOBAL', { zip64: 'records', align: 64, dataDescriptor: true }, false],
    ['plain ZIP, protocol 4 STACK_GLOBAL', { zip64: 'none' }, true],
    ['forced ZIP64 fields, deflated data.pkl', { zip64: 'force', deflate: ['ckpt/data.pkl'] }, false],
  ];
  for (const [label, opts, stackGlobal] of layouts)
    it(`gathers strided views into row-major order: ${label}`, () => {
      const file = path.join(tmpDir('reno-torch'), 'views.pt');
      writeTorchZip(file, 'ckpt', viewsPickle(stackGlobal), storages, opts);
      const pt = openTorchCheckpoint(file);
      try {
        assert.equal(pt.root, 'ckpt');
        const read = (k: string) => [...pt.read(k)];
        assert.deepEqual(read('full'), [0, 1, 2, 3, 4, 5]);
        assert.deepEqual(read('transposed'), [0, 3, 1, 4, 2, 5]);
        assert.deepEqual(pt.info('transposed'), { name: 'transposed', dtype: 'F32', shape: [3, 2] });
        assert.deepEqual(pt.tensorInfo('transposed')?.stride, [1, 3]);
        assert.deepEqual(read('column'), [1, 4]);
        assert.deepEqual(read('tail'), [4, 5]);
        assert.deepEqual(read('expanded'), [1, 2, 3, 1, 2, 3]);
        assert.deepEqual(read('scalar'), [5]);
        assert.deepEqual(pt.info('scalar')?.shape, []);
        assert.deepEqual(read('half'), [1, -2, 0.5]);
        assert.equal(pt.info('half')?.dtype, 'F16');
        assert.deepEqual(read('bf16'), [1, -3]);
        assert.deepEqual(read('long'), [7, -9]);
        assert.equal(pt.info('long')?.dtype, 'I64');
        assert.deepEqual(read('double'), [1.5, 3.5, 2.5, 4.5]);
        assert.equal(pt.tensorInfo('double')?.location, 'cuda:1');
      } finally {
        pt.close();
      }
    });

  it('reads parameters, tensor subclasses (_rebuild_from_type_v2) and _rebuild_tensor_v3 over an untyped storage', () => {
    const p = new Pk().proto(2).ordered().mark();
    // torch/_utils.py _rebuild_parameter(data, requires_grad, backward_hooks)
    p.str('param')
      .global('torch._utils', '_rebuild_parameter')
      .mark()
      .tensor('FloatStorage', '0', 4, 2, [2], [1])
      .op(0x88)
      .ordered()
      .op(0x74)
      .op(0x52);
    // torch/_tensor.py _rebuild_from_type_v2(func, new_type, args, state)
    p.str('sub').global('torch._tensor', '_rebuild_from_type_v2').mark().global('torch._utils', '_rebuild_tensor_v2');
    p.global('torch.nn.parameter', 'Parameter').mark().tensorArgs('FloatStorage', '0', 4, 0, [2, 2], [1, 2]).op(0x74).emptyDict().op(0x74).op(0x52);
    // torch/_utils.py _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype): offset in dtype elements
    p.str('v3').global('torch._utils', '_rebuild_tensor_v3').mark().tensorArgs('UntypedStorage', '1', 8, 1, [3], [1]);
    p.global('torch', 'float16').op(0x74).op(0x52);
    p.str('size').global('torch', 'Size').tuple(2, 3).op(0x85).op(0x52);
    const file = path.join(tmpDir('reno-torch'), 'forms.pt');
    const half = new Uint8Array(Uint16Array.from([0x0000, 0x3c00, 0x4000, 0x4200]).buffer); // 0, 1, 2, 3
    writeTorchZip(file, 'forms', p.op(0x75).stop().bytes(), { '0': f32(1, 2, 3, 4), '1': half });
    const pt = openTorchCheckpoint(file);
    assert.deepEqual(pt.keys(), ['param', 'sub', 'v3']);
    assert.deepEqual([...pt.read('param')], [3, 4]);
    assert.deepEqual([...pt.read('sub')], [1, 3, 2, 4]);
    assert.equal(pt.info('v3')?.dtype, 'F16');
    assert.deepEqual([...pt.read('v3')], [1, 2, 3]);
    assert.deepEqual(pt.extras().get('size'), [2, 3]);
    pt.close();
  });

  it("strips one wrapper level ({'model': ..., 'epoch': 7}) and keeps non-tensor values as extras", () => {
    const p = new Pk().proto(2).emptyDict().mark();
    p.str('model').emptyDict().mark();
    p.str('a').tensor('FloatStorage', '0', 2, 0, [2], [1]);
    p.str('sub').emptyDict().str('b').tensor('FloatStorage', '0', 2, 1, [1], [1]).setitem();
    p.op(0x75); // SETITEMS into model
    p.str('epoch').int(7).str('lr').float(0.5).str('name').str('run-1').str('flag').op(0x88);
    p.str('sizes').tuple(3, 4);
    const file = path.join(tmpDir('reno-torch'), 'wrapped.ckpt');
    writeTorchZip(file, 'wrapped', p.op(0x75).stop().bytes(), { '0': f32(10, 20) });
    const pt = openTorchCheckpoint(file);
    assert.equal(pt.wrapper, 'model');
    assert.deepEqual(pt.keys(), ['a', 'sub.b']);
    assert.deepEqual([...pt.read('sub.b')], [20]);
    assert.deepEqual(Object.fromEntries(pt.extras()), { epoch: 7, lr: 0.5, name: 'run-1', flag: true, sizes: [3, 4] });
    pt.close();

    // Two tensor-holding entries: nothing is stripped, names keep their top-level key.
    const q = new Pk().proto(2).emptyDict().mark();
    for (const top of ['ema', 'model']) q.str(top).emptyDict().str('w').tensor('FloatStorage', '0', 2, 0, [2], [1]).setitem();
    const file2 = path.join(tmpDir('reno-torch'), 'two.pt');
    writeTorchZip(file2, 'two', q.op(0x75).stop().bytes(), { '0': f32(1, 2) });
    const pt2 = openTorchCheckpoint(file2);
    assert.equal(pt2.wrapper, null);
    assert.deepEqual(pt2.keys(), ['ema.w', 'model.w']);
    pt2.close();
  });
});

describe('torch.save checkpoints: refusals', () => {
  function malicious(globalName: [string, string], stackGlobal: boolean, dir: string): { file: string; marker: string } {
    const marker = path.join(dir, 'pwned');
    const p = new Pk(stackGlobal).proto(stackGlobal ? 4 : 2);
    if (globalName[1] === 'eval') p.global(...globalName).str(`__import__('os').system('touch ${marker}')`);
    else p.global(...globalName).str(`touch ${marker}`);
    const file = path.join(dir, 'evil.pt');
    writeTorchZip(file, 'evil', p.op(0x85).op(0x52).stop().bytes()); // TUPLE1, REDUCE, STOP
    return { file, marker };
  }

  it('refuses os.system (GLOBAL) by name and runs nothing', () => {
    const { file, marker } = malicious(['os', 'system'], false, tmpDir('reno-torch'));
    const err = rejects(() => openTorchCheckpoint(file), /os\.system/, file);
    assert.match(err.message, /allow-list/);
    assert.equal(fs.existsSync(marker), false);
    rejects(() => openWeights(file), /os\.system/, file);
    assert.equal(fs.existsSync(marker), false);
  });

  it('refuses builtins.eval (STACK_GLOBAL) by name and runs nothing', () => {
    const { file, marker } = malicious(['builtins', 'eval'], true, tmpDir('reno-torch'));
    rejects(() => openTorchCheckpoint(file), /builtins\.eval/, file);
    assert.equal(fs.existsSync(marker), false);
  });

  it('refuses other dangerous globals, also after legitimate tensors', () => {
    for (const [m, n] of [
      ['posix', 'system'],
      ['subprocess', 'Popen'],
      ['__builtin__', 'exec'],
      ['torch', 'load'],
      ['torch', 'constructor'],
      ['builtins', 'getattr'],
      ['__torch__', 'Model'],
    ]) {
      const dir = tmpDir('reno-torch');
      const p = new Pk().proto(2).ordered().mark().str('w').tensor('FloatStorage', '0', 1, 0, [1], [1]);
      p.str('x').global(m, n).str('id').op(0x85).op(0x52).op(0x75).stop();
      const file = path.join(dir, 'evil.pth');
      writeTorchZip(file, 'archive', p.bytes(), { '0': f32(1) });
      const err = rejects(() => openTorchCheckpoint(file), new RegExp(`${m}\\.${n}`), file);
      if (m === '__torch__') assert.match(err.message, /TorchScript/);
    }
  });

  it('refuses INST/OBJ of unlisted globals, and REDUCE on values that are not allowed globals', () => {
    const dir = tmpDir('reno-torch');
    const inst = path.join(dir, 'inst.pt');
    writeTorchZip(inst, 'inst', new Pk().proto(2).mark().str('id').op(0x69, Buffer.from('os\nsystem\n')).stop().bytes());
    rejects(() => openTorchCheckpoint(inst), /os\.system/, inst);
    const obj = path.join(dir, 'obj.pt');
    writeTorchZip(obj, 'obj', new Pk(true).proto(4).mark().global('subprocess', 'Popen').str('id').op(0x6f).stop().bytes());
    rejects(() => openTorchCheckpoint(obj), /subprocess\.Popen/, obj);
    const red = path.join(dir, 'reduce.pt');
    writeTorchZip(red, 'reduce', new Pk().proto(2).str('os.system').str('id').op(0x85).op(0x52).stop().bytes());
    rejects(() => openTorchCheckpoint(red), /REDUCE .* not an allowed global/, red);
    const notCallable = path.join(dir, 'type.pt');
    writeTorchZip(notCallable, 'type', new Pk().proto(2).global('torch', 'FloatStorage').op(0x29).op(0x52).stop().bytes());
    rejects(() => openTorchCheckpoint(notCallable), /torch\.FloatStorage: is not callable/, notCallable);
  });

  it('a truncated archive fails with an error naming the file', () => {
    const dir = tmpDir('reno-torch');
    const whole = fs.readFileSync(path.join(ASSETS, 'sac+logos+ava1-l14-linearMSE.pth'));
    for (const keep of [whole.length >> 1, whole.length - 10, 5]) {
      const file = path.join(dir, `cut-${keep}.pth`);
      fs.writeFileSync(file, whole.subarray(0, keep));
      rejects(() => openTorchCheckpoint(file), /truncated/, file);
    }
    const pkl = path.join(dir, 'pkl.pt'); // a pickle cut short inside a valid archive
    writeTorchZip(pkl, 'pkl', viewsPrefix());
    rejects(() => openTorchCheckpoint(pkl), /pickle: .*(truncated|MARK|underflow)/, pkl);
    const small = path.join(dir, 'small.pt'); // a storage with fewer bytes than its view needs
    writeTorchZip(small, 'small', new Pk().proto(2).ordered().mark().str('w').tensor('FloatStorage', '0', 6, 0, [6], [1]).op(0x75).stop().bytes(), {
      '0': f32(1, 2),
    });
    rejects(() => openTorchCheckpoint(small), /tensor w: view ends at byte 24 .* 8 bytes/, small);
    const missing = path.join(dir, 'missing.pt');
    writeTorchZip(
      missing,
      'missing',
      new Pk().proto(2).ordered().mark().str('w').tensor('FloatStorage', '7', 1, 0, [1], [1]).op(0x75).stop().bytes(),
    );
    rejects(() => openTorchCheckpoint(missing), /storage missing\/data\/7 is missing/, missing);
  });

  it('a ZIP without data.pkl, a TorchScript archive and a legacy (pre-1.6) file are refused clearly', () => {
    const dir = tmpDir('reno-torch');
    const none = path.join(dir, 'none.pt');
    writeZip(none, [
      ['archive/version', Buffer.from('3\n')],
      ['archive/data/0', f32(1)],
    ]);
    rejects(() => openTorchCheckpoint(none), /no <root>\/data\.pkl/, none);
    const jit = path.join(dir, 'jit.pt');
    writeZip(jit, [
      ['jit/data.pkl', new Pk().proto(2).emptyDict().stop().bytes()],
      ['jit/constants.pkl', Buffer.from([0x80, 2, 0x29, 0x2e])],
      ['jit/code/__torch__.py', Buffer.from('')],
    ]);
    rejects(() => openTorchCheckpoint(jit), /TorchScript/, jit);
    const legacy = path.join(dir, 'legacy.pt');
    fs.writeFileSync(legacy, Buffer.concat([new Pk().proto(2).int(1).stop().bytes(), Buffer.alloc(64)]));
    rejects(() => openTorchCheckpoint(legacy), /legacy torch\.save file \(PyTorch < 1\.6/, legacy);
  });
});

/** The first half of a valid state-dict pickle (no STOP). */
function viewsPrefix(): Buffer {
  const whole = new Pk().proto(2).ordered().mark().str('w').tensor('FloatStorage', '0', 1, 0, [1], [1]).op(0x75).stop().bytes();
  return whole.subarray(0, whole.length >> 1);
}
