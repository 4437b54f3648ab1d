// The PNGs a run writes, as other image tools read them: AUTOMATIC1111's `parameters` chunk (parsed here with a
// parser written from A1111's infotext format), reno's own `reno` chunk read back by `reno score` and by
// `reno generate --config-from IMAGE.png`, no `prompt` key (ComfyUI's workflow key), no local path in any chunk.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { main } from '../../src/cli/main.js';
import { generateCommand } from '../../src/commands/generate.js';
import { scoreCommand } from '../../src/commands/score.js';
import { readPngText } from '../../src/image/png.js';
import { ROOT, tmpDir } from '../helpers.js';
import { colourTarget, register } from './fake-rewards.js';

// a reward whose score is not minus its loss (offset 2): scores and losses must not be confused
register({ ...colourTarget('test_png_red', [1, 0, 0]), offset: 2 });
const OFF = { imagereward: 0, aesthetic: 0, pickscore: 0, clip: 0, hpsv2: 0, personal: 0 };
const base = { preset: 'tiny', backend: 'wasm', quiet: true } as const;

/**
 * AUTOMATIC1111's parse_generation_parameters (modules/infotext_utils.py), as documented there: the text's lines are
 * the prompt, then an optional line starting "Negative prompt:", and a last line of "Key: value" pairs separated by
 * commas (a value may be a JSON-quoted string); a last line with fewer than 3 pairs belongs to the prompt.
 */
function parseA1111(text: string): { prompt: string; negative: string; params: Record<string, string> } {
  const reParam = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;
  const lines = text.trim().split('\n');
  let last = lines.pop() ?? '';
  if ([...last.matchAll(reParam)].length < 3) {
    lines.push(last);
    last = '';
  }
  let prompt = '';
  let negative = '';
  let inNegative = false;
  for (const [i, l0] of lines.entries()) {
    let line = l0.trim();
    if (line.startsWith('Negative prompt:')) {
      inNegative = true;
      line = line.slice(16).trim();
    }
    if (inNegative) negative += (negative ? '\n' : '') + line;
    else prompt += (i ? '\n' : '') + line;
  }
  const params: Record<string, string> = {};
  for (const m of last.matchAll(reParam)) {
    let v = m[2];
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = JSON.parse(v);
    params[m[1].trim()] = v;
  }
  return { prompt, negative, params };
}

const metrics = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

async function pixels(file: string): Promise<Buffer> {
  return sharp(file).raw().toBuffer();
}

test('best.png: A1111 parameters with prompt, steps, seed, size and model; one reno record; no prompt key, no local path', async () => {
  const out = tmpDir();
  const r = await generateCommand({
    ...base,
    prompt: 'a red fox, at dusk: oil',
    out,
    seed: 7,
    steps: 4,
    overrides: { weights: { ...OFF, test_png_red: 1 }, lr: 50, save_steps: true },
  });
  const files = ['best.png', 'init.png', 'steps/000.png', 'steps/003.png'];
  for (const f of files) {
    const text = readPngText(fs.readFileSync(path.join(r.dir, f)));
    assert.deepEqual(Object.keys(text).sort(), ['parameters', 'reno'], f);
    for (const [k, v] of Object.entries(text))
      for (const local of [ROOT, os.tmpdir(), os.homedir(), out, process.cwd()])
        assert.ok(!v.includes(local), `${f}: chunk ${k} holds the local path ${local}`);
  }
  const text = readPngText(fs.readFileSync(path.join(r.dir, 'best.png')));
  const p = parseA1111(text.parameters);
  assert.equal(p.prompt, 'a red fox, at dusk: oil');
  assert.equal(p.negative, '');
  assert.equal(p.params.Steps, '1');
  assert.equal(p.params.Seed, '7');
  assert.equal(p.params.Size, '64x64');
  assert.equal(p.params.Model, 'sd-turbo');
  assert.match(p.params['Model hash'], /^[0-9a-f]{10}$/);
  const m = metrics(r.dir);
  const best = m.find((x) => x.best && x.step === r.result.best!.record.step) ?? m[r.result.best!.record.step];
  assert.equal(p.params['ReNO best step'], String(best.step));
  assert.equal(p.params['ReNO steps'], '4');
  assert.equal(p.params['ReNO lr'], '50');
  assert.equal(p.params.Rewards, 'test_png_red 1');
  assert.equal(p.params['Smoke test'], 'random weights');

  const rec = JSON.parse(text.reno);
  assert.equal(rec.prompt, 'a red fox, at dusk: oil');
  assert.equal(rec.seed, 7);
  assert.equal(rec.model.name, 'sd-turbo');
  assert.equal(rec.model.repo, 'stabilityai/sd-turbo');
  assert.equal(rec.model.sha256.slice(0, 10), p.params['Model hash']);
  assert.equal(rec.model.file, 'unet/diffusion_pytorch_model.safetensors');
  assert.equal(rec.smoke_test, true);
  // losses as in metrics.jsonl, scores = offset - loss, each under its own name
  assert.equal(rec.losses.test_png_red, best.rewards.test_png_red);
  assert.equal(rec.total_loss, best.total);
  assert.equal(rec.scores.test_png_red, 2 - best.rewards.test_png_red);
  assert.equal(p.params['Reward scores'], `test_png_red ${Number(rec.scores.test_png_red.toPrecision(6))}`);
  assert.equal(p.params['Reward losses'], `test_png_red ${Number(rec.losses.test_png_red.toPrecision(6))}`);
  assert.equal(rec.step, best.step);
  const init = JSON.parse(readPngText(fs.readFileSync(path.join(r.dir, 'init.png'))).reno);
  assert.equal(init.step, 0);
  assert.equal(init.image, 'init');
  assert.equal(init.losses.test_png_red, m[0].rewards.test_png_red);
});

test('generate --config-from best.png regenerates the same run: same losses, same pixels', async () => {
  const out = tmpDir();
  const first = await generateCommand({
    ...base,
    prompt: 'a red fox',
    out,
    seed: 3,
    steps: 4,
    overrides: { weights: { ...OFF, test_png_red: 1 }, lr: 30, momentum: 0.5 },
  });
  const again = await generateCommand({ ...base, configFrom: path.join(first.dir, 'best.png'), out });
  assert.equal(again.config.prompt, 'a red fox');
  assert.equal(again.config.seed, 3);
  assert.equal(again.config.lr, 30);
  assert.deepEqual(
    metrics(again.dir).map((x) => [x.total, x.rewards]),
    metrics(first.dir).map((x) => [x.total, x.rewards]),
  );
  assert.ok((await pixels(path.join(first.dir, 'best.png'))).equals(await pixels(path.join(again.dir, 'best.png'))));
  // flags still override what the image holds
  const other = await generateCommand({ ...base, configFrom: path.join(first.dir, 'best.png'), out, seed: 4, steps: 2 });
  assert.equal(other.config.seed, 4);
  assert.equal(other.config.lr, 30);
  assert.equal(metrics(other.dir).length, 2);
});

test('--config-from an image reno did not write names the file and writes nothing', async () => {
  const out = tmpDir();
  const plain = path.join(out, 'plain.png');
  await sharp({ create: { width: 8, height: 8, channels: 3, background: '#f00' } })
    .png()
    .toFile(plain);
  await assert.rejects(
    generateCommand({ ...base, configFrom: plain, out }),
    (e: Error) => e.name === 'DataError' && e.message.includes(plain) && /no "reno" text chunk/.test(e.message),
  );
  assert.deepEqual(fs.readdirSync(out), ['plain.png']);
  // the CLI takes --config-from without --prompt: the error is the image's, not a missing --prompt
  const errs: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => (errs.push(String(s)), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(['generate', '--config-from', plain, '--preset', 'tiny', '--out', out, '--quiet']);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(code, 1);
  assert.match(errs.join(''), /plain\.png has no "reno" text chunk/);
  // without either, --prompt is still required (a usage error, exit 2, before any work)
  errs.length = 0;
  process.stderr.write = ((s: string) => (errs.push(String(s)), true)) as typeof process.stderr.write;
  try {
    code = await main(['generate', '--preset', 'tiny', '--out', out, '--quiet']);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(code, 2);
  assert.match(errs.join(''), /^reno: --prompt is required \(or --config-from IMAGE\.png/);
  assert.deepEqual(fs.readdirSync(out), ['plain.png']);
});

test('score reads the reno record back: the stored prompt and settings, without --prompt', async () => {
  const out = tmpDir();
  const r = await generateCommand({
    ...base,
    prompt: 'a red fox',
    out,
    seed: 5,
    steps: 3,
    overrides: { weights: { ...OFF, test_png_red: 1 }, lr: 50 },
  });
  const lines: string[] = [];
  const best = path.join(r.dir, 'best.png');
  const rows = await scoreCommand({ ...base, images: [best], rewards: ['test_png_red'], json: true, out: (l) => lines.push(l) });
  const json = JSON.parse(lines.join('\n'));
  assert.equal(json.rows[0].stored.prompt, 'a red fox');
  assert.equal(json.rows[0].stored.seed, 5);
  assert.equal(json.rows[0].stored.model.name, 'sd-turbo');
  assert.equal(json.rows[0].stored.step, r.result.best!.record.step);
  assert.deepEqual(json.rows[0].stored.scores, { test_png_red: 2 - r.result.best!.record.rewards.test_png_red });
  assert.ok(Number.isFinite(rows[0].scores.test_png_red));
  // as a table: one line of stored settings per image
  const table: string[] = [];
  await scoreCommand({ ...base, images: [best], rewards: ['test_png_red'], out: (l) => table.push(l) });
  assert.ok(
    table.some((l) => l.includes('best.png') && l.includes('seed 5') && l.includes('sd-turbo') && l.includes(`step ${r.result.best!.record.step}`)),
    table.join('\n'),
  );
  // an image without a record and no --prompt: named
  const plain = path.join(out, 'plain.png');
  await sharp({ create: { width: 8, height: 8, channels: 3, background: '#f00' } })
    .png()
    .toFile(plain);
  await assert.rejects(
    scoreCommand({ ...base, images: [plain], rewards: ['test_png_red'], out: () => {} }),
    /plain\.png.*--prompt|--prompt.*plain\.png/,
  );
});
