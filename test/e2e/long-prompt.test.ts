// A prompt longer than the CLIP text encoders read (77 tokens, start and end included) is cut: `reno generate` warns
// once per run through its log, naming how many tokens were dropped, however many steps run and however many rewards
// tokenize the same prompt.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { generateCommand } from '../../src/commands/generate.js';
import { CLIP_MODES, ClipTokenizer } from '../../src/tokenizers/clip-bpe.js';
import { ROOT, tmpDir } from '../helpers.js';

const LONG = Array.from({ length: 30 }, (_, i) => `a red fox number ${i}`).join(', ');

test('a prompt over 77 CLIP tokens: one warning per run naming the dropped tokens; a short prompt: none', async () => {
  const tok = ClipTokenizer.fromFolder(path.join(ROOT, 'presets/tiny/stabilityai/sd-turbo/tokenizer'));
  const tokens = tok.tokenize([LONG], { ...CLIP_MODES.sdTurbo, length: 77 }).untruncated[0];
  assert.ok(tokens > 77, `the test prompt has ${tokens} tokens`);
  const lines: string[] = [];
  // the generator, CLIP, PickScore and HPSv2 all tokenize the prompt with CLIP's BPE; three steps
  const weights = { imagereward: 0, aesthetic: 0, pickscore: 0.05, clip: 1, hpsv2: 1 };
  await generateCommand({
    prompt: LONG,
    preset: 'tiny',
    backend: 'wasm',
    quiet: true,
    out: tmpDir(),
    steps: 3,
    overrides: { weights },
    log: (l) => lines.push(l),
  });
  const warnings = lines.filter((l) => /token/i.test(l));
  assert.equal(warnings.length, 1, lines.join('\n'));
  assert.match(warnings[0], /^reno: warning: /);
  assert.match(warnings[0], new RegExp(`\\b${tokens - 77} tokens? dropped\\b`));
  assert.match(warnings[0], new RegExp(`\\b${tokens}\\b`));

  const short: string[] = [];
  await generateCommand({
    prompt: 'a red fox',
    preset: 'tiny',
    backend: 'wasm',
    quiet: true,
    out: tmpDir(),
    steps: 2,
    overrides: { weights },
    log: (l) => short.push(l),
  });
  assert.deepEqual(
    short.filter((l) => /token/i.test(l)),
    [],
  );
});
