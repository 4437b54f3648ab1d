// A restricted unpickler for the data.pkl of torch.save checkpoints (opcodes: CPython Lib/pickle.py and
// Lib/pickletools.py, protocols 0-5). It builds plain data only: dicts, lists, tuples, sets, scalars, and tensor/storage
// descriptors. It never executes anything: a global is resolved through the allow-list of src/weights/pickle-data.ts
// (anything else is refused by name when it is loaded), and a REDUCE only "calls" that file's data builders.
import { WeightsError } from '../errors.js';
import { callGlobal, dictKey, intArg, isTuple, PyDict, PyGlobal, PySet, resolveGlobal, StorageRef, TensorRef, type PyValue } from './pickle-data.js';

export { PyDict, PyGlobal, PySet, resolveGlobal, StorageRef, TensorRef, type PyKey, type PyValue } from './pickle-data.js';

const MAX_PICKLE = 1 << 30;

/** Unpickle `data` (the bytes of data.pkl). `file` is named in every error. */
export function unpickle(data: Uint8Array, file: string): PyValue {
  if (data.length > MAX_PICKLE) throw new WeightsError(`${file}: pickle of ${data.length} bytes is too large`);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const fail = (why: string) => new WeightsError(`${file}: pickle: ${why}`);
  let stack: PyValue[] = [];
  const marks: PyValue[][] = [];
  const memo = new Map<number, PyValue>();
  let p = 0;

  const need = (n: number) => {
    if (p + n > buf.length) throw fail(`unexpected end of data at byte ${p}: truncated`);
    const at = p;
    p += n;
    return at;
  };
  const u8 = () => buf[need(1)];
  const u16 = () => buf.readUInt16LE(need(2));
  const u32 = () => buf.readUInt32LE(need(4));
  const u64 = () => {
    const v = buf.readBigUInt64LE(need(8));
    if (v > BigInt(MAX_PICKLE)) throw fail(`length ${v} is too large`);
    return Number(v);
  };
  const bytes = (n: number) => buf.subarray(need(n), p);
  const line = () => {
    const end = buf.indexOf(0x0a, p);
    if (end < 0) throw fail(`unterminated line at byte ${p}: truncated`);
    const s = buf.toString('latin1', p, end);
    p = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    if (stack.length === 0) throw fail(`stack underflow at byte ${p}`);
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length === 0) throw fail(`stack underflow at byte ${p}`);
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    const prev = marks.pop();
    if (!prev) throw fail(`MARK expected at byte ${p}`);
    stack = prev;
    return items;
  };
  const get = (i: number) => {
    if (!memo.has(i)) throw fail(`memo key ${i} is not defined`);
    stack.push(memo.get(i) as PyValue);
  };
  const setItems = (d: PyValue, kv: PyValue[]) => {
    if (!(d instanceof PyDict)) throw fail('SETITEM(S) on something that is not a dict');
    for (let i = 0; i + 1 < kv.length; i += 2) d.map.set(dictKey(kv[i], file), kv[i + 1]);
  };
  const appendItems = (l: PyValue, items: PyValue[]) => {
    if (l instanceof PySet && !l.frozen) l.items.push(...items);
    else if (Array.isArray(l) && !Object.isFrozen(l)) (l as PyValue[]).push(...items);
    else throw fail('APPEND(S)/ADDITEMS on something that is not a list or set');
  };
  const long = (b: Uint8Array): number | bigint => {
    // pickle.py decode_long: little-endian two's complement.
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    const at = p;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw fail('pickle protocol newer than 5');
        break;
      case 0x95: // FRAME (framing is only a read-ahead hint)
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) throw fail(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28: // MARK
        marks.push(stack);
        stack = [];
        break;
      case 0x30:
        pop();
        break; // POP
      case 0x31:
        popMark();
        break; // POP_MARK
      case 0x32:
        stack.push(top());
        break; // DUP
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x4b:
        stack.push(u8());
        break; // BININT1
      case 0x4d:
        stack.push(u16());
        break; // BININT2
      case 0x4a:
        stack.push(buf.readInt32LE(need(4)));
        break; // BININT
      case 0x8a:
        stack.push(long(bytes(u8())));
        break; // LONG1
      case 0x8b: {
        // LONG4
        const n = u32();
        if (n > 1024) throw fail('LONG4 integer is too large');
        stack.push(long(bytes(n)));
        break;
      }
      case 0x49: {
        // INT (protocol 0): "01"/"00" are True/False
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : Number.parseInt(s, 10));
        break;
      }
      case 0x4c: {
        // LONG (protocol 0): decimal digits and a trailing L
        const s = line().replace(/L$/, '');
        if (!/^[-+]?\d{1,400}$/.test(s)) throw fail(`bad LONG literal at byte ${at}`);
        const v = BigInt(s);
        stack.push(v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47:
        stack.push(buf.readDoubleBE(need(8)));
        break; // BINFLOAT (big-endian)
      case 0x46:
        stack.push(Number.parseFloat(line()));
        break; // FLOAT
      case 0x58:
        stack.push(bytes(u32()).toString('utf8'));
        break; // BINUNICODE
      case 0x8c:
        stack.push(bytes(u8()).toString('utf8'));
        break; // SHORT_BINUNICODE
      case 0x8d:
        stack.push(bytes(u64()).toString('utf8'));
        break; // BINUNICODE8
      case 0x54:
        stack.push(bytes(u32()).toString('latin1'));
        break; // BINSTRING (py2 str)
      case 0x55:
        stack.push(bytes(u8()).toString('latin1'));
        break; // SHORT_BINSTRING
      case 0x42:
        stack.push(new Uint8Array(bytes(u32())));
        break; // BINBYTES
      case 0x43:
        stack.push(new Uint8Array(bytes(u8())));
        break; // SHORT_BINBYTES
      case 0x8e:
        stack.push(new Uint8Array(bytes(u64())));
        break; // BINBYTES8
      case 0x96:
        stack.push(new Uint8Array(bytes(u64())));
        break; // BYTEARRAY8
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x29:
        stack.push(Object.freeze([]));
        break; // EMPTY_TUPLE
      case 0x7d:
        stack.push(new PyDict());
        break; // EMPTY_DICT
      case 0x8f:
        stack.push(new PySet([], false));
        break; // EMPTY_SET
      case 0x6c: {
        const items = popMark();
        stack.push(items);
        break;
      } // LIST (popMark swaps `stack`: pop first)
      case 0x74: {
        const items = popMark();
        stack.push(Object.freeze(items));
        break;
      } // TUPLE
      case 0x85:
        stack.push(Object.freeze([pop()]));
        break; // TUPLE1
      case 0x86: {
        const b = pop();
        const a = pop();
        stack.push(Object.freeze([a, b]));
        break;
      } // TUPLE2
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(Object.freeze([a, b, c]));
        break;
      } // TUPLE3
      case 0x91: {
        const items = popMark();
        stack.push(new PySet(items, true));
        break;
      } // FROZENSET
      case 0x64: {
        const d = new PyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      } // DICT
      case 0x61: {
        const v = pop();
        appendItems(top(), [v]);
        break;
      } // APPEND
      case 0x65: {
        const items = popMark();
        appendItems(top(), items);
        break;
      } // APPENDS
      case 0x90: {
        const items = popMark();
        appendItems(top(), items);
        break;
      } // ADDITEMS
      case 0x73: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      } // SETITEM
      case 0x75: {
        const kv = popMark();
        setItems(top(), kv);
        break;
      } // SETITEMS
      case 0x68:
        get(u8());
        break; // BINGET
      case 0x6a:
        get(u32());
        break; // LONG_BINGET
      case 0x67:
        get(Number.parseInt(line(), 10));
        break; // GET
      case 0x71:
        memo.set(u8(), top());
        break; // BINPUT
      case 0x72:
        memo.set(u32(), top());
        break; // LONG_BINPUT
      case 0x70:
        memo.set(Number.parseInt(line(), 10), top());
        break; // PUT
      case 0x94:
        memo.set(memo.size, top());
        break; // MEMOIZE
      case 0x63: {
        // GLOBAL "module\nname\n": resolved (or refused) right here
        const module = line();
        stack.push(resolveGlobal(module, line(), file));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw fail('STACK_GLOBAL with non-string names');
        stack.push(resolveGlobal(module, name, file));
        break;
      }
      case 0x69: {
        // INST "module\nname\n" (protocol 0): resolved (or refused) first, then built from the marked args
        const module = line();
        const g = resolveGlobal(module, line(), file);
        const args = popMark();
        stack.push(callGlobal(g, args, file));
        break;
      }
      case 0x6f: {
        // OBJ (protocol 1): MARK cls args... OBJ
        const [cls, ...args] = popMark();
        if (!(cls instanceof PyGlobal)) throw fail(`OBJ at byte ${at} on something that is not an allowed global`);
        stack.push(callGlobal(cls, args, file));
        break;
      }
      case 0x52: {
        // REDUCE: callable(*args), only ever one of the builders above
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PyGlobal) || !isTuple(args)) throw fail(`REDUCE at byte ${at} on something that is not an allowed global`);
        stack.push(callGlobal(fn, args, file));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args); allowed classes build the same data as a call
        const args = pop();
        const cls = pop();
        if (!(cls instanceof PyGlobal) || !isTuple(args)) throw fail(`NEWOBJ at byte ${at} on something that is not an allowed global`);
        stack.push(callGlobal(cls, args, file));
        break;
      }
      case 0x62: {
        // BUILD: obj.__setstate__(state) / obj.__dict__.update(state); kept as data, never called
        const state = pop();
        const obj = top();
        if (obj instanceof PyDict) obj.state = state;
        else if (!(obj instanceof TensorRef)) throw fail(`BUILD at byte ${at} on an unsupported object`);
        break;
      }
      case 0x51: {
        // BINPERSID: torch/serialization.py _load persistent_load(('storage', type, key, location, numel))
        const pid = pop();
        if (!isTuple(pid) || pid[0] !== 'storage' || pid.length < 5)
          throw fail(`unsupported persistent id at byte ${at} (torch.save writes ('storage', ...))`);
        const [, type, key, location, numel] = pid;
        if (!(type instanceof PyGlobal) || (type.kind !== 'storage' && type.kind !== 'dtype')) throw fail('persistent id without a storage type');
        if (typeof key !== 'string') throw fail('persistent id with a non-string storage key');
        stack.push(new StorageRef(key, type.dtype, String(location), intArg(numel, 'storage size', file)));
        break;
      }
      default:
        throw fail(
          `unsupported opcode 0x${op.toString(16).padStart(2, '0')} ('${String.fromCharCode(op)}') at byte ${at} ` +
            '(EXT registry codes, text PERSID and out-of-band buffers are not read)',
        );
    }
  }
}
