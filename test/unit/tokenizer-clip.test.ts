import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ConfigError, DataError } from '../../src/errors.js';
import { tokenizerClipCase } from '../../src/parity/cases/tokenizer-clip.js';
import type { ParityContext } from '../../src/parity/types.js';
import { CLIP_MODES, ClipTokenizer, type ClipTokenizeOptions } from '../../src/tokenizers/clip-bpe.js';
import { fixText, isBad } from '../../src/tokenizers/ftfy.js';
import { ftfyUnescapeHtml, htmlUnescape } from '../../src/tokenizers/html.js';
import { readNpy } from '../../src/weights/npy.js';
import { ASSETS, PARITY, tmpDir } from '../helpers.js';

const CASE = path.join(PARITY, 'tokenizer_clip');
const HF_DIR = path.join(ASSETS, 'clip_tokenizer_hf');
const GZ = path.join(ASSETS, 'bpe_simple_vocab_16e6.txt.gz');
const prompts: string[] = JSON.parse(fs.readFileSync(path.join(CASE, 'prompts.json'), 'utf8'));
const hf = ClipTokenizer.fromFolder(HF_DIR);
const oc = ClipTokenizer.fromOpenClipBpe(GZ);
const ctx: ParityContext = { backend: 'cpu', tol: { output: 1e-4, gradient: 1e-3 }, root: PARITY };

/** Rows of ours that differ from the reference file. */
function badRows(ours: Int32Array, file: string): number[] {
  const ref = readNpy(path.join(CASE, 'io', `${file}.npy`));
  assert.deepEqual(ref.shape, [prompts.length, 77]);
  const bad: number[] = [];
  for (let r = 0; r < prompts.length; r++) {
    for (let c = 0; c < 77; c++) {
      if (ours[r * 77 + c] !== ref.data[r * 77 + c]) {
        bad.push(r);
        break;
      }
    }
  }
  return bad;
}

const CASES: [string, ClipTokenizeOptions, 'ids' | 'mask'][] = [
  ['hf_pad_bang_input_ids', CLIP_MODES.sdTurbo, 'ids'],
  ['hf_pad_bang_attention_mask', CLIP_MODES.sdTurbo, 'mask'],
  ['hf_default_pad_input_ids', CLIP_MODES.hfDefault, 'ids'],
  ['hf_default_pad_attention_mask', CLIP_MODES.hfDefault, 'mask'],
  ['hf457_fast_input_ids', CLIP_MODES.hfDefault, 'ids'],
  ['hf457_slow_input_ids', { pad: 'eos', clean: 'hf_slow' }, 'ids'],
  ['open_clip_ids', CLIP_MODES.openClip, 'ids'],
];

for (const [file, opts, field] of CASES) {
  test(`all ${prompts.length} prompts match ${file} (both vocab sources)`, () => {
    for (const tok of [hf, oc]) assert.deepEqual(badRows(tok.tokenize(prompts, opts)[field], file), []);
  });
}

test('open_clip untruncated lengths', () => {
  const ref = readNpy(path.join(CASE, 'io', 'open_clip_untruncated_length.npy')).data;
  assert.deepEqual(oc.tokenize(prompts, CLIP_MODES.openClip).untruncated, Array.from(ref));
});

test('the reference-specific rows: entities, mojibake (prompt 21), quotes, special literals, width', () => {
  const row = (tok: ClipTokenizer, text: string, opts: ClipTokenizeOptions) => {
    const { ids, mask } = tok.tokenize([text], opts);
    return Array.from(
      ids.slice(
        0,
        mask.reduce((a, b) => a + b, 0),
      ),
    );
  };
  // prompt 21: ftfy repairs the mojibake in open_clip and in transformers 4.x slow; transformers 5 keeps the bytes.
  assert.deepEqual(row(hf, prompts[21], CLIP_MODES.openClip), [49406, 617, 3252, 11878, 3459, 39694, 263, 3391, 2702, 1535, 6028, 264, 49407]);
  assert.deepEqual(row(hf, prompts[21], CLIP_MODES.hfDefault).slice(0, 8), [49406, 617, 3252, 11878, 127, 352, 5811, 83]);
  assert.deepEqual(row(hf, prompts[27], CLIP_MODES.hfDefault), [49406, 49406, 24269, 1689, 17134, 4160, 49407, 49407]);
  assert.deepEqual(row(hf, prompts[28], CLIP_MODES.openClip), [49406, 49406, 1488, 318, 9289, 1689, 17134, 4160, 49407, 49407]);
  assert.deepEqual(row(hf, prompts[20], CLIP_MODES.openClip), [49406, 18231, 38134, 261, 283, 321, 285, 257, 27706, 257, 49407]);
});

test('pad "!": a literal "!" is id 0 and counts in the mask; eos padding keeps "!</w>"', () => {
  const bang = hf.tokenize(['a!'], { ...CLIP_MODES.sdTurbo, length: 6 });
  assert.deepEqual(Array.from(bang.ids), [49406, 320, 0, 49407, 0, 0]);
  assert.deepEqual(Array.from(bang.mask), [1, 1, 1, 1, 0, 0]);
  const eos = hf.tokenize(['a!'], { ...CLIP_MODES.hfDefault, length: 6 });
  assert.deepEqual(Array.from(eos.ids), [49406, 320, 256, 49407, 49407, 49407]);
  assert.deepEqual(Array.from(eos.mask), [1, 1, 1, 1, 0, 0]);
  assert.equal(hf.padId('bang'), 0);
  assert.equal(hf.bosId, 49406);
  assert.equal(hf.eosId, 49407);
  assert.equal(oc.bosId, 49406);
  assert.equal(oc.eosId, 49407);
  assert.equal(hf.vocabSize, 49408);
  assert.equal(oc.vocabSize, 49408);
});

test('truncation keeps eos at position 76 in every mode', () => {
  const long = Array.from({ length: 120 }, (_, i) => `word${i}`).join(' ');
  for (const opts of [CLIP_MODES.sdTurbo, CLIP_MODES.hfDefault, CLIP_MODES.openClip]) {
    const out = hf.tokenize([long, 'short'], opts);
    assert.deepEqual(out.shape, [2, 77]);
    assert.equal(out.ids[0], 49406);
    assert.equal(out.ids[76], 49407);
    assert.notEqual(out.ids[75], 49407);
    assert.equal(
      out.mask.slice(0, 77).reduce((a, b) => a + b, 0),
      77,
    );
    assert.ok(out.untruncated[0] > 77);
    const short = [49406, ...hf.encode('short', opts), 49407];
    assert.deepEqual(Array.from(out.ids.slice(77, 77 + short.length)), short);
  }
  const short = hf.tokenize([long], { ...CLIP_MODES.openClip, length: 5 });
  assert.deepEqual(Array.from(short.ids.slice(1, 4)), Array.from(hf.tokenize([long], CLIP_MODES.openClip).ids.slice(1, 4)));
  assert.equal(short.ids[4], 49407);
  assert.throws(() => hf.tokenize(['x'], { ...CLIP_MODES.openClip, length: 1 }), ConfigError);
});

test('ftfy and html ports', () => {
  assert.equal(fixText('sÃ³'), 'só');
  assert.equal(fixText('voilÃ  le travail'), 'voilà le travail');
  assert.equal(fixText('Itâ€™s a â€œtestâ€'), 'It\'s a "testâ€');
  assert.equal(fixText('ＬＯＵＤ　ＮＯＩＳＥＳ ﬂuﬃeﬆ “q” ‘s’'), 'LOUD NOISES fluffiest "q" \'s\'');
  assert.equal(fixText('&lt;b&gt; x'), '<b> x');
  assert.equal(fixText('<b>&lt;</b>'), '<b>&lt;</b>', 'no unescape once a line has <');
  assert.equal(fixText('a\r\nb\u2028c\x00\ufeff'), 'a\nb\nc');
  assert.equal(fixText('caf\x82 \x93x\x94'), 'caf\' "x"');
  assert.equal(isBad('café'), false);
  assert.equal(isBad('cafÃ©'), true);
  assert.equal(htmlUnescape('&amplifier &copy &COPY; &#x41;&#65 &#128; &#0; &#xD800; &notit;'), '&lifier © © AA € \ufffd \ufffd ¬it;');
  assert.equal(ftfyUnescapeHtml('P&EACUTE;REZ &SZLIG; &#59; &amp &nTILDE;'), 'PÉREZ SS &#59; &amp &nTILDE;');
  // HTML5-only names, as Python's html.unescape decodes them (html.entities.html5)
  assert.equal(htmlUnescape('&check; &NotEqualTilde; &ThickSpace; &fjlig; &check &checkx;'), '\u2713 \u2242\u0338 \u205f\u200a fj &check &checkx;');
  assert.equal(ftfyUnescapeHtml('&check; &CHECK; &NotEqualTilde; &NOTEQUALTILDE;'), '\u2713 \u2713 \u2242\u0338 &NOTEQUALTILDE;');
});

test('open_clip clean vs hf clean on special-token literals', () => {
  assert.deepEqual(hf.encode('<start_of_text>', { clean: 'open_clip' }), [49406]);
  assert.deepEqual(hf.encode('<|endoftext|>', { clean: 'hf' }), [49407]);
  assert.notDeepEqual(hf.encode('<|endoftext|>', { clean: 'open_clip' }), [49407]);
  assert.deepEqual(hf.encode('<|ENDOFTEXT|>', { clean: 'hf_slow' }), [49407], 'slow pattern is IGNORECASE after lower()');
});

test('file errors name the file', () => {
  const d = tmpDir('reno-clip-tok');
  assert.throws(
    () => ClipTokenizer.fromFolder(d),
    (e: Error) => e instanceof ConfigError && e.message.includes(path.join(d, 'vocab.json')),
  );
  assert.throws(
    () => ClipTokenizer.fromOpenClipBpe(path.join(d, 'nope.txt.gz')),
    (e: Error) => e instanceof ConfigError && e.message.includes('nope.txt.gz'),
  );
  fs.writeFileSync(path.join(d, 'vocab.json'), '{"a": 0');
  assert.throws(
    () => ClipTokenizer.fromFolder(d),
    (e: Error) => e instanceof ConfigError && e.message.includes('vocab.json'),
  );
  fs.copyFileSync(path.join(HF_DIR, 'vocab.json'), path.join(d, 'vocab.json'));
  fs.writeFileSync(path.join(d, 'merges.txt'), '#version: 0.2\ni n\nbroken line here\n');
  assert.throws(
    () => ClipTokenizer.fromFolder(d),
    (e: Error) => e instanceof ConfigError && /merges\.txt:3/.test(e.message),
  );
  fs.writeFileSync(path.join(d, 'merges.txt'), '#version: 0.2\ni n\n');
  fs.writeFileSync(path.join(d, 'special_tokens_map.json'), '{"bos_token": "<bos>"}');
  assert.throws(
    () => ClipTokenizer.fromFolder(d),
    (e: Error) => e instanceof ConfigError && e.message.includes('<bos>') && e.message.includes('vocab.json'),
  );
  fs.writeFileSync(path.join(d, 'bad.gz'), 'not gzip');
  assert.throws(
    () => ClipTokenizer.fromOpenClipBpe(path.join(d, 'bad.gz')),
    (e: Error) => e instanceof ConfigError && e.message.includes('bad.gz'),
  );
});

test('parity case tokenizer_clip: every reference exact', async () => {
  const checks = await tokenizerClipCase.run(CASE, ctx);
  assert.equal(checks.length, 9);
  for (const c of checks) {
    assert.equal(c.tol, 0, c.name);
    assert.ok(c.pass, `${c.name}: relErr ${c.relErr} ${c.note ?? ''}`);
  }
});

test('parity case names the vocab paths it tried', async () => {
  const root = path.join(tmpDir('reno-clip-case'), 'parity');
  const dir = path.join(root, 'tokenizer_clip');
  fs.mkdirSync(path.join(dir, 'io'), { recursive: true });
  fs.copyFileSync(path.join(CASE, 'prompts.json'), path.join(dir, 'prompts.json'));
  await assert.rejects(tokenizerClipCase.run(dir, { ...ctx, root }), (e: Error) => {
    return e instanceof DataError && e.message.includes(path.join(root, '..', 'assets', 'clip_tokenizer_hf')) && e.message.includes('tried');
  });
});
