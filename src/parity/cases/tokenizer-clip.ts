// Parity case `tokenizer_clip`: CLIP BPE token ids of the fixture's prompts (prompts.json) against the stored
// references of transformers 5.17 CLIPTokenizer (pad "!" and default eos padding, with attention masks),
// transformers 4.57 CLIPTokenizer (slow, with ftfy) and CLIPTokenizerFast, and open_clip.tokenize. Ids must be
// exact: every check has tolerance 0.
//
// The vocabulary is the shared asset clip_tokenizer_hf/ (vocab.json + merges.txt), looked up in this order:
//   1. <root>/../assets/clip_tokenizer_hf        (root = the fixture root, test/fixtures/parity)
//   2. <dir>/../../assets/clip_tokenizer_hf      (dir = this case's folder)
// open_clip_ids is also checked with the tokenizer built from open_clip's own bpe_simple_vocab_16e6.txt.gz when
// that file is found (the manifest's vocab.file, relative to the case folder, then the same two asset folders).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../../errors.js';
import { ClipTokenizer, type ClipTokenizeOptions } from '../../tokenizers/clip-bpe.js';
import { readNpy } from '../../weights/npy.js';
import { check, type Check, type ParityCase } from '../types.js';

type Ref = { file: string; opts: ClipTokenizeOptions; field: 'ids' | 'mask' | 'untruncated'; what: string };
const BANG: ClipTokenizeOptions = { pad: 'bang', clean: 'hf' };
const EOS: ClipTokenizeOptions = { pad: 'eos', clean: 'hf' };
const OPEN_CLIP: ClipTokenizeOptions = { pad: 'zero', clean: 'open_clip' };

/** Reference tensor -> how to produce it. */
const REFS: Ref[] = [
  { file: 'hf_pad_bang_input_ids', opts: BANG, field: 'ids', what: 'transformers 5.17, pad_token "!"' },
  { file: 'hf_pad_bang_attention_mask', opts: BANG, field: 'mask', what: 'transformers 5.17, pad_token "!"' },
  { file: 'hf_default_pad_input_ids', opts: EOS, field: 'ids', what: 'transformers 5.17, eos padding' },
  { file: 'hf_default_pad_attention_mask', opts: EOS, field: 'mask', what: 'transformers 5.17, eos padding' },
  { file: 'hf457_fast_input_ids', opts: EOS, field: 'ids', what: 'transformers 4.57 CLIPTokenizerFast' },
  { file: 'hf457_slow_input_ids', opts: { pad: 'eos', clean: 'hf_slow' }, field: 'ids', what: 'transformers 4.57 + ftfy' },
  { file: 'open_clip_ids', opts: OPEN_CLIP, field: 'ids', what: 'open_clip.tokenize' },
  { file: 'open_clip_untruncated_length', opts: OPEN_CLIP, field: 'untruncated', what: 'open_clip, untruncated' },
];

/** Where the shared assets may sit, in lookup order. */
function assetDirs(dir: string, root: string): string[] {
  return [path.join(root, '..', 'assets'), path.join(dir, '..', '..', 'assets')];
}

export function clipVocabDir(dir: string, root: string): string {
  const tried = assetDirs(dir, root).map((a) => path.join(a, 'clip_tokenizer_hf'));
  const hit = tried.find((d) => fs.existsSync(path.join(d, 'vocab.json')));
  if (!hit) throw new DataError(`${dir}: no CLIP tokenizer vocabulary (vocab.json); tried ${tried.join(', ')}`);
  return hit;
}

function openClipBpeFile(dir: string, root: string): string | undefined {
  const candidates: string[] = [];
  const manifest = path.join(dir, 'manifest.json');
  if (fs.existsSync(manifest)) {
    const file = (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { vocab?: { file?: unknown } }).vocab?.file;
    if (typeof file === 'string') candidates.push(path.join(dir, file));
  }
  candidates.push(...assetDirs(dir, root).map((a) => path.join(a, 'bpe_simple_vocab_16e6.txt.gz')));
  return candidates.find((f) => fs.existsSync(f));
}

function readPrompts(dir: string): string[] {
  const file = path.join(dir, 'prompts.json');
  let prompts: unknown;
  try {
    prompts = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DataError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (!Array.isArray(prompts) || !prompts.every((p) => typeof p === 'string')) {
    throw new DataError(`${file}: expected a JSON list of strings`);
  }
  return prompts as string[];
}

export const tokenizerClipCase: ParityCase = {
  name: 'tokenizer_clip',
  async run(dir, ctx) {
    const prompts = readPrompts(dir);
    const tok = ClipTokenizer.fromFolder(clipVocabDir(dir, ctx.root));
    const checks: Check[] = [];
    const one = (t: ClipTokenizer, r: Ref, label: string): void => {
      const file = path.join(dir, 'io', `${r.file}.npy`);
      if (!fs.existsSync(file)) return; // a fixture set without this reference
      const ref = readNpy(file);
      if (ref.shape[0] !== prompts.length) {
        throw new DataError(`${file}: ${ref.shape[0]} rows for ${prompts.length} prompts in prompts.json`);
      }
      const out = t.tokenize(prompts, { ...r.opts, length: ref.shape[1] ?? undefined });
      const ours = r.field === 'untruncated' ? out.untruncated : out[r.field];
      checks.push(
        check(`tokenizer_clip/${r.file}${label}`, ours, ref.data, 'output', ctx, {
          tol: 0,
          note: `${r.what}; pad ${r.opts.pad}, clean ${r.opts.clean}`,
        }),
      );
    };
    for (const r of REFS) one(tok, r, '');
    const gz = openClipBpeFile(dir, ctx.root);
    const ocRef = REFS.find((r) => r.file === 'open_clip_ids')!;
    if (gz) one(ClipTokenizer.fromOpenClipBpe(gz), ocRef, ' [bpe_simple_vocab_16e6.txt.gz]');
    if (checks.length === 0) throw new DataError(`${dir}: no reference ids under io/`);
    return checks;
  },
};
