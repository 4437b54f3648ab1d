// Parity case `aesthetic_laion`: the released LAION improved-aesthetic-predictor head on stored CLIP-style
// embeddings: score = head(embeddings) and d sum(score) / d embeddings. The head is the real
// sac+logos+ava1-l14-linearMSE.pth, which the fixture set keeps once in <root>/../assets/ (the manifest's
// weights.file names it); a head file (*.pth / *.pt / *.safetensors) inside the case folder takes precedence.
import * as tf from '../../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonFile } from '../../config/json.js';
import { DataError } from '../../errors.js';
import { loadAestheticHead } from '../../models/aesthetic-head.js';
import { tensorOf, values } from '../tensors.js';
import { check, npy, type ParityCase } from '../types.js';

export const AESTHETIC_HEAD_FILE = 'sac+logos+ava1-l14-linearMSE.pth';
const HEAD = /\.(pth|pt|bin|safetensors)$/i;

/** The head file for a case folder: one in the folder itself, else the shared assets folder next to the root. */
export function aestheticHeadFile(dir: string, root: string): string {
  const own = fs
    .readdirSync(dir)
    .filter((f) => HEAD.test(f) && fs.statSync(path.join(dir, f)).isFile())
    .sort();
  if (own.length > 1) throw new DataError(`${dir}: several head files (${own.join(', ')}); keep one`);
  if (own.length === 1) return path.join(dir, own[0]);
  let name = AESTHETIC_HEAD_FILE;
  const manifest = path.join(dir, 'manifest.json');
  if (fs.existsSync(manifest)) {
    const w = readJsonFile(manifest, 'fixture manifest').weights as { file?: unknown } | undefined;
    const named = typeof w?.file === 'string' ? /([^/\\\s]+\.(?:pth|pt|bin|safetensors))/i.exec(w.file) : null;
    if (named) name = named[1];
  }
  const shared = path.join(root, '..', 'assets', name);
  if (!fs.existsSync(shared)) throw new DataError(`${dir}: no head file in the case folder and none at ${shared}`);
  return shared;
}

export const aestheticLaionCase: ParityCase = {
  name: 'aesthetic_laion',
  async run(dir, ctx) {
    const head = loadAestheticHead(aestheticHeadFile(dir, ctx.root));
    try {
      const emb = tensorOf(npy(dir, 'embeddings'), 'float32');
      const score = head.forward(emb);
      const grad = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(head.forward(x)))(emb));
      const checks = [
        check('aesthetic_laion/score', await values(score), npy(dir, 'score').data, 'output', ctx),
        check('aesthetic_laion/grad_embeddings', await values(grad), npy(dir, 'grad_embeddings').data, 'gradient', ctx),
      ];
      tf.dispose([emb, score, grad]);
      return checks;
    } finally {
      head.dispose();
    }
  },
};
