import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readConfigFile, resolveConfig, validatePartial } from '../../src/config/run-config.js';
import { ConfigError } from '../../src/errors.js';
import { tmpDir } from '../helpers.js';

test('defaults, then a config file, then overrides (weights merge key by key)', () => {
  const d = tmpDir();
  const f = path.join(d, 'c.yaml');
  fs.writeFileSync(f, 'steps: 12\nweights:\n  a: 1\n  b: 2\n');
  const c = resolveConfig({ file: f, overrides: { prompt: 'x', weights: { b: '0.5' }, seed: '7' } });
  assert.equal(c.steps, 12);
  assert.equal(c.seed, 7);
  assert.equal(c.weights.a, 1);
  assert.equal(c.weights.b, 0.5);
  assert.equal(c.weights.pickscore, 0.05); // the defaults' weights stay unless overridden
  assert.equal(c.lr, 5);
  assert.equal(c.prompt, 'x');
});

test('unknown keys, wrong types and negative counts are rejected naming the key', () => {
  assert.throws(
    () => validatePartial({ stepz: 3 }, 'f.yaml'),
    (e: Error) => e instanceof ConfigError && /f\.yaml: unknown key "stepz"/.test(e.message),
  );
  assert.throws(() => validatePartial({ steps: -1 }, 'cli'), /"steps" must be an integer >= 1/);
  assert.throws(() => validatePartial({ steps: 2.5 }, 'cli'), /"steps" must be an integer/);
  assert.throws(() => validatePartial({ lr: 'fast' }, 'cli'), /"lr" must be a number/);
  assert.throws(() => validatePartial({ optimizer: 'lbfgs' }, 'cli'), /"optimizer" must be one of sgd, adam/);
  assert.throws(() => validatePartial({ weights: { clip: -1 } }, 'cli'), /"weights\.clip" must be a number >= 0/);
  assert.throws(() => validatePartial({ nesterov: 'yes' }, 'cli'), /"nesterov" must be true or false/);
  assert.deepEqual(validatePartial({ width: null, nesterov: 'false' }, 'cli'), { width: null, nesterov: false });
});

test('a bad YAML file is named', () => {
  const d = tmpDir();
  const f = path.join(d, 'bad.yaml');
  fs.writeFileSync(f, 'steps: [1, 2\n');
  assert.throws(() => readConfigFile(f), /bad\.yaml: invalid YAML/);
  assert.throws(() => readConfigFile(path.join(d, 'none.yaml')), /cannot read config .*none\.yaml/);
});
