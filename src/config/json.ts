// Helpers to build typed model configs field by field from a checkpoint's config.json. Models never read JSON:
// a `fromJson` per config calls these, and every error names the file and the key.
import * as fs from 'node:fs';
import { ConfigError } from '../errors.js';

export type Json = Record<string, unknown>;

export function readJsonFile(file: string, what = 'config'): Json {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(code === 'ENOENT' ? `${what} not found: ${file}` : `cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (e) {
    throw new ConfigError(`${file}: ${(e as Error).message}`);
  }
}

/** Typed reads from a config object; `src` names the file in errors. */
export class Fields {
  constructor(
    readonly obj: Json,
    readonly src: string,
  ) {}

  private bad(key: string, want: string): never {
    throw new ConfigError(`${this.src}: "${key}" must be ${want}, found ${JSON.stringify(this.obj[key])}`);
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  num(key: string, dflt?: number): number {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw new ConfigError(`${this.src}: missing "${key}"`);
      return dflt;
    }
    return typeof v === 'number' && Number.isFinite(v) ? v : this.bad(key, 'a number');
  }

  int(key: string, dflt?: number): number {
    const v = this.num(key, dflt);
    return Number.isInteger(v) ? v : this.bad(key, 'an integer');
  }

  str(key: string, dflt?: string): string {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw new ConfigError(`${this.src}: missing "${key}"`);
      return dflt;
    }
    return typeof v === 'string' ? v : this.bad(key, 'a string');
  }

  bool(key: string, dflt?: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw new ConfigError(`${this.src}: missing "${key}"`);
      return dflt;
    }
    return typeof v === 'boolean' ? v : this.bad(key, 'true or false');
  }

  ints(key: string, dflt?: number[]): number[] {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw new ConfigError(`${this.src}: missing "${key}"`);
      return dflt;
    }
    return Array.isArray(v) && v.every((x) => Number.isInteger(x)) ? (v as number[]) : this.bad(key, 'a list of integers');
  }

  strs(key: string, dflt?: string[]): string[] {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw new ConfigError(`${this.src}: missing "${key}"`);
      return dflt;
    }
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : this.bad(key, 'a list of strings');
  }

  /** An integer, or a list of integers (one per block), expanded to `n` entries. */
  intOrList(key: string, n: number, dflt?: number): number[] {
    const v = this.obj[key];
    if (Array.isArray(v)) {
      if (v.length !== n || !v.every((x) => Number.isInteger(x))) this.bad(key, `an integer or a list of ${n} integers`);
      return v as number[];
    }
    return new Array(n).fill(this.int(key, dflt));
  }

  /** A nested object (e.g. "text_config"), as Fields. */
  sub(key: string, dflt: Json = {}): Fields {
    const v = this.obj[key];
    if (v === undefined || v === null) return new Fields(dflt, `${this.src} ${key}`);
    if (typeof v !== 'object' || Array.isArray(v)) this.bad(key, 'an object');
    return new Fields(v as Json, `${this.src} ${key}`);
  }

  oneOf<T extends string>(key: string, options: readonly T[], dflt?: T): T {
    const v = this.str(key, dflt);
    return (options as readonly string[]).includes(v) ? (v as T) : this.bad(key, `one of ${options.join(', ')}`);
  }
}
