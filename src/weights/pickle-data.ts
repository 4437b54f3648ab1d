// What the restricted unpickler (src/weights/pickle.ts) builds: plain Python values, tensor and storage descriptors,
// and the allow-list of globals. Every GLOBAL/STACK_GLOBAL is looked up in ALLOWED below and any other name
// (os.system, builtins.eval, ...) is refused, with a WeightsError naming it, at the moment it is loaded, so a REDUCE
// can only ever "call" one of the data builders implemented here in JavaScript. The allow-list follows the spirit of
// torch/_weights_only_unpickler.py (torch.load(weights_only=True)), restricted to what state dicts need.
import { WeightsError } from '../errors.js';

/** Python values as the unpickler builds them. Tuples are frozen arrays, lists are plain arrays. */
export type PyValue =
  null | boolean | number | bigint | string | Uint8Array | PyValue[] | readonly PyValue[] | PyDict | PySet | PyGlobal | StorageRef | TensorRef;

export type PyKey = string | number | bigint | boolean | null;

export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
  /** The state given by BUILD (torch state dicts carry `{'_metadata': ...}` here); never part of the items. */
  state: PyValue = null;
  constructor(readonly type: 'dict' | 'OrderedDict' = 'dict') {}
}

export class PySet {
  constructor(
    readonly items: PyValue[],
    readonly frozen: boolean,
  ) {}
}

/** A name from the allow-list (a data builder, a storage type, a dtype or a type marker). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly kind: 'builder' | 'storage' | 'dtype' | 'type',
    /** For storage types and dtypes: the element type in safetensors spelling (F32, I64, ...). */
    readonly dtype = '',
  ) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A persistent id ('storage', storage_type, key, location, numel): the storage lives in `<root>/data/<key>`. */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: string,
    readonly location: string,
    readonly numel: number,
  ) {}
}

/** A tensor as torch._utils._rebuild_tensor_v2 describes it: a strided view into a storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    /** In elements of `dtype`. */
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly dtype: string,
  ) {}
}

// torch/storage.py _LegacyStorage subclasses and torch/__init__.py dtype names -> safetensors dtype spelling.
const STORAGES: Record<string, string> = {
  DoubleStorage: 'F64',
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  UntypedStorage: 'U8',
};
const DTYPES: Record<string, string> = {
  float64: 'F64',
  double: 'F64',
  float32: 'F32',
  float: 'F32',
  float16: 'F16',
  half: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  long: 'I64',
  int32: 'I32',
  int: 'I32',
  int16: 'I16',
  short: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};
const BUILDERS = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._tensor._rebuild_from_type_v2',
  'torch.Size',
  'torch.device',
  'builtins.set',
  'builtins.frozenset',
  '__builtin__.set',
  '__builtin__.frozenset',
  '_codecs.encode',
  'torch.nn.parameter.Parameter',
];
const TYPES = ['torch.Tensor', 'torch._tensor.Tensor'];

/** Resolve a global through the allow-list; anything else is refused by name before anything happens. */
export function resolveGlobal(module: string, name: string, file: string): PyGlobal {
  const q = `${module}.${name}`;
  if (BUILDERS.includes(q)) return new PyGlobal(module, name, 'builder');
  if (TYPES.includes(q)) return new PyGlobal(module, name, 'type');
  if ((module === 'torch' || module === 'torch.storage') && Object.hasOwn(STORAGES, name))
    return new PyGlobal(module, name, 'storage', STORAGES[name]);
  if (module === 'torch' && Object.hasOwn(DTYPES, name)) return new PyGlobal(module, name, 'dtype', DTYPES[name]);
  const hint = module.startsWith('__torch__')
    ? ' (this looks like a TorchScript archive written by torch.jit.save; reno reads torch.save state dicts only)'
    : ' (a torch.save state dict only needs tensors, storages and dicts; a whole pickled model or arbitrary objects are not read)';
  throw new WeightsError(
    `${file}: refusing to load the pickle global ${q}: it is not on reno's allow-list, and reno never runs code from a checkpoint${hint}`,
  );
}

export const isTuple = (v: PyValue): v is readonly PyValue[] => Array.isArray(v);

export function intArg(v: PyValue, what: string, file: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new WeightsError(`${file}: pickle: ${what} is not an integer`);
}

export function intList(v: PyValue, what: string, file: string): number[] {
  if (!isTuple(v)) throw new WeightsError(`${file}: pickle: ${what} is not a tuple`);
  return v.map((x) => intArg(x, what, file));
}

/** "Call" an allowed builder with its arguments: each one builds data and nothing else. */
export function callGlobal(g: PyGlobal, args: readonly PyValue[], file: string): PyValue {
  const bad = (why: string) => new WeightsError(`${file}: pickle: ${g.qualname}: ${why}`);
  if (g.kind !== 'builder') throw bad('is not callable here');
  const tensorArgs = (dtypeArg?: PyValue): TensorRef => {
    // torch/_utils.py _rebuild_tensor / _rebuild_tensor_v2 / _rebuild_tensor_v3 (storage, storage_offset, size, stride, ...)
    const [storage, offset, size, stride] = args;
    if (!(storage instanceof StorageRef)) throw bad('first argument is not a storage');
    let dtype = storage.dtype;
    if (dtypeArg !== undefined) {
      if (!(dtypeArg instanceof PyGlobal) || dtypeArg.kind !== 'dtype') throw bad('dtype argument is not a torch dtype');
      dtype = dtypeArg.dtype;
    }
    const shape = intList(size, 'tensor size', file);
    const strides = intList(stride, 'tensor stride', file);
    if (strides.length !== shape.length) throw bad(`size ${JSON.stringify(shape)} and stride ${JSON.stringify(strides)} differ in length`);
    if (shape.some((d) => d < 0) || strides.some((s) => s < 0)) throw bad('negative size or stride');
    return new TensorRef(storage, intArg(offset, 'storage offset', file), shape, strides, dtype);
  };
  switch (g.qualname) {
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2':
      return tensorArgs();
    case 'torch._utils._rebuild_tensor_v3':
      return tensorArgs(args[6]);
    case 'torch._utils._rebuild_parameter': // (data, requires_grad, backward_hooks)
    case 'torch._utils._rebuild_parameter_with_state':
    case 'torch.nn.parameter.Parameter':
      if (!(args[0] instanceof TensorRef)) throw bad('data is not a tensor');
      return args[0];
    case 'torch._tensor._rebuild_from_type_v2': {
      // torch/_tensor.py _rebuild_from_type_v2(func, new_type, args, state): func(*args), then a subclass cast we skip.
      const [fn, , inner] = args;
      if (!(fn instanceof PyGlobal) || !isTuple(inner)) throw bad('bad arguments');
      return callGlobal(fn, inner, file);
    }
    case 'collections.OrderedDict': {
      const d = new PyDict('OrderedDict');
      if (args.length > 0 && Array.isArray(args[0]))
        for (const kv of args[0] as PyValue[]) {
          if (!isTuple(kv) || kv.length !== 2) throw bad('items are not (key, value) pairs');
          d.map.set(dictKey(kv[0], file), kv[1]);
        }
      return d;
    }
    case 'torch.Size':
      return Object.freeze(intList(args[0] ?? [], 'torch.Size', file));
    case 'torch.device':
      return args.map((a) => String(a)).join(':');
    case 'builtins.set':
    case '__builtin__.set':
    case 'builtins.frozenset':
    case '__builtin__.frozenset':
      return new PySet(Array.isArray(args[0]) ? [...(args[0] as PyValue[])] : [], g.name === 'frozenset');
    case '_codecs.encode': {
      // How protocol 2 pickles bytes: _codecs.encode(str, 'latin1').
      const [s, enc] = args;
      if (typeof s !== 'string') throw bad('argument is not a string');
      return new Uint8Array(Buffer.from(s, enc === 'utf-8' || enc === 'utf8' ? 'utf8' : 'latin1'));
    }
  }
  throw bad('is not callable here');
}

export function dictKey(k: PyValue, file: string): PyKey {
  if (k === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof k)) return k as PyKey;
  if (isTuple(k)) return `(${k.map((x) => String(dictKey(x, file))).join(', ')})`;
  throw new WeightsError(`${file}: pickle: unsupported dict key type`);
}
