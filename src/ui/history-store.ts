// `reno ui`'s side of history.json (README "history.json"): append a choice, undo the last one, count the pairs.
// Every change rewrites the whole file atomically (src/util/files.ts writeFileAtomic), so a crash never leaves a
// broken history.json; the two images of a choice are copied next to it (images/) first, so the file never names an
// image that is not there. A file that exists and is not a valid history is reported and never overwritten.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors.js';
import { parseHistory } from '../data/history.js';
import { makeDirs, writeFileAtomic } from '../util/files.js';

export interface HistoryState {
  file: string;
  /** number of pairs (0 when the file does not exist yet) */
  pairs: number;
  /** why the file cannot be used (not JSON, bad fields): the UI shows it and refuses to write */
  error: string | null;
}

interface RawHistory {
  user?: unknown;
  model?: unknown;
  pairs: { prompt: string; liked: string; disliked: string }[];
  [k: string]: unknown;
}

export class HistoryStore {
  readonly file: string;
  constructor(file: string) {
    this.file = path.resolve(file);
  }

  /** The file as it is now, validated (its images must exist); null when it does not exist yet. */
  private load(): RawHistory | null {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new DataError(`cannot read history ${this.file}: ${(e as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new DataError(`${this.file}: not valid JSON (${(e as Error).message}); fix or move it: reno ui does not overwrite it`);
    }
    const raw = json as RawHistory;
    // an empty "pairs" list is a valid start here (after undoing every choice); anything else is checked as usual
    const emptyStart = !!json && typeof json === 'object' && !Array.isArray(json) && Array.isArray(raw.pairs) && raw.pairs.length === 0;
    if (!emptyStart) parseHistory(json, this.file);
    return raw;
  }

  state(): HistoryState {
    try {
      return { file: this.file, pairs: this.load()?.pairs.length ?? 0, error: null };
    } catch (e) {
      if (e instanceof DataError) return { file: this.file, pairs: 0, error: e.message };
      throw e;
    }
  }

  /** Append one choice: copy both images into images/ next to the file, then rewrite the file atomically. */
  append(prompt: string, liked: string, disliked: string): HistoryState {
    const h = this.load() ?? { user: path.basename(this.file, path.extname(this.file)), pairs: [] };
    const dir = path.join(path.dirname(this.file), 'images');
    makeDirs(dir);
    const id = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}-${crypto.randomBytes(3).toString('hex')}`;
    const copy = (src: string, tag: string): string => {
      const name = `${id}-${tag}${path.extname(src) || '.png'}`;
      writeFileAtomic(path.join(dir, name), fs.readFileSync(src));
      return `images/${name}`;
    };
    const copies: string[] = [];
    try {
      const pair = { prompt, liked: '', disliked: '' };
      copies.push((pair.liked = copy(liked, 'liked')));
      copies.push((pair.disliked = copy(disliked, 'disliked')));
      writeFileAtomic(this.file, JSON.stringify({ ...h, pairs: [...h.pairs, pair] }, null, 2) + '\n');
    } catch (e) {
      // the history is unchanged: the copies it would have named go too
      for (const c of copies) fs.rmSync(path.join(path.dirname(this.file), c), { force: true });
      throw e;
    }
    return this.state();
  }

  /** Remove the last pair (and the images this UI copied for it). */
  undo(): HistoryState {
    const h = this.load();
    if (!h || h.pairs.length === 0) throw new DataError(`${this.file}: no pair to undo`);
    const last = h.pairs[h.pairs.length - 1];
    writeFileAtomic(this.file, JSON.stringify({ ...h, pairs: h.pairs.slice(0, -1) }, null, 2) + '\n');
    for (const p of [last.liked, last.disliked]) {
      // only the copies this UI made (images/<id>-liked.png); a path the user wrote by hand is left alone
      if (typeof p === 'string' && /^images\/[\w-]+-(liked|disliked)\.\w+$/.test(p))
        fs.rmSync(path.join(path.dirname(this.file), p), { force: true });
    }
    return this.state();
  }
}
