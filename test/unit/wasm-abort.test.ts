// A wasm module that aborts (out of heap) becomes a DeviceLimitError with advice, not an internal error with a stack.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeviceLimitError, wasmAbort } from '../../src/errors.js';

const RuntimeError = (globalThis as unknown as { WebAssembly: { RuntimeError: new (m: string) => Error } }).WebAssembly.RuntimeError;

test('wasmAbort: an aborted wasm module is a DeviceLimitError that says what to change; other errors pass through', () => {
  // the message tfjs-backend-wasm's module throws when its heap cannot grow (seen at 512 px before the lean backward pass)
  const e = wasmAbort(new RuntimeError('Aborted(). Build with -sASSERTIONS for more info.'));
  assert.ok(e instanceof DeviceLimitError);
  assert.match(e.message, /out of memory/);
  assert.match(e.message, /--size/);
  assert.match(e.message, /--backend webgpu/);
  assert.equal(wasmAbort(new RuntimeError('unreachable')), null, 'another wasm trap');
  assert.equal(wasmAbort(new Error('Aborted(). something else')), null, 'not a wasm RuntimeError');
  assert.equal(wasmAbort('Aborted()'), null);
});
