// Streaming reader of parquet files on hyparquet: the file is read through an AsyncBuffer over fs.promises reads
// (only the footer and the asked-for column chunks of one row group at a time are in memory, so a shard of any size
// never has to fit), rows are yielded row group by row group, binary columns come back as Buffers.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { DataError } from '../errors.js';

/** A parquet file opened for reading: its footer, top-level column names and row groups. */
export interface ParquetFile {
  path: string;
  metadata: FileMetaData;
  numRows: number;
  /** Top-level column names in schema order. */
  columns: string[];
  /** Each row group's first row (in the file) and row count. */
  rowGroups: { rowStart: number; rows: number }[];
  /** Bytes read from the file so far (footer and column chunks). */
  bytesRead(): number;
  close(): Promise<void>;
}

export type ParquetRow = Record<string, unknown>;

export interface ParquetReadOptions {
  /** Columns to read (all if omitted). */
  columns?: string[];
  /** Columns that must exist; a missing one fails naming the column and the file (default: `columns`). */
  required?: string[];
  /** Called when the file is closed with the number of bytes read from it. */
  onClose?: (bytesRead: number) => void;
}

/** One row group's rows; `rowStart` is the file row index of rows[0]. */
export interface ParquetBatch {
  file: string;
  group: number;
  rowStart: number;
  rows: ParquetRow[];
}

/** An AsyncBuffer that reads byte ranges from an open file handle (no whole-file Buffer). */
function fileBuffer(file: string, fh: fs.promises.FileHandle, size: number, counter: { bytes: number }): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = Math.min(end ?? size, size);
      const len = Math.max(0, stop - start);
      const ab = new ArrayBuffer(len);
      const view = new Uint8Array(ab);
      let done = 0;
      while (done < len) {
        const { bytesRead } = await fh.read(view, done, len - done, start + done);
        if (bytesRead === 0) throw new DataError(`${file}: unexpected end of file at byte ${start + done}`);
        done += bytesRead;
      }
      counter.bytes += len;
      return ab;
    },
  };
}

/** Open a parquet file and read its footer. Errors name the file. */
export async function openParquet(file: string): Promise<ParquetFile & { buffer: AsyncBuffer }> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (e) {
    throw new DataError(`${file}: cannot open (${(e as Error).message})`);
  }
  const counter = { bytes: 0 };
  try {
    const size = (await fh.stat()).size;
    const buffer = fileBuffer(file, fh, size, counter);
    let metadata: FileMetaData;
    try {
      metadata = await parquetMetadataAsync(buffer, { initialFetchSize: 1 << 16 }); // footer tail; refetched if larger
    } catch (e) {
      throw new DataError(`${file}: not a readable parquet file (${(e as Error).message})`);
    }
    const columns = parquetSchema(metadata).children.map((c) => c.element.name);
    const rowGroups: { rowStart: number; rows: number }[] = [];
    let start = 0;
    for (const g of metadata.row_groups) {
      const rows = Number(g.num_rows);
      rowGroups.push({ rowStart: start, rows });
      start += rows;
    }
    return {
      path: file,
      metadata,
      numRows: Number(metadata.num_rows),
      columns,
      rowGroups,
      buffer,
      bytesRead: () => counter.bytes,
      close: () => fh.close(),
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** Fail (DataError) naming the first missing column and the file. */
export function requireColumns(pf: Pick<ParquetFile, 'path' | 'columns'>, required: readonly string[]): void {
  const have = new Set(pf.columns);
  const missing = required.filter((c) => !have.has(c));
  if (missing.length) {
    throw new DataError(
      `${pf.path}: missing required column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `'${c}'`).join(', ')} (columns: ${pf.columns.join(', ')})`,
    );
  }
}

/** Binary (Uint8Array) values as Buffers sharing the same memory; everything else as hyparquet decodes it. */
function toNodeValues(row: ParquetRow): ParquetRow {
  for (const k of Object.keys(row)) {
    const v = row[k];
    if (v instanceof Uint8Array && !Buffer.isBuffer(v)) row[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }
  return row;
}

/** Yield one batch per row group, reading only the asked-for columns of that group. */
export async function* parquetBatches(file: string, o: ParquetReadOptions = {}): AsyncGenerator<ParquetBatch> {
  const pf = await openParquet(file);
  try {
    requireColumns(pf, o.required ?? o.columns ?? []);
    const columns = o.columns?.filter((c) => pf.columns.includes(c));
    for (let g = 0; g < pf.rowGroups.length; g++) {
      const { rowStart, rows: n } = pf.rowGroups[g];
      if (n === 0) continue;
      let rows: ParquetRow[];
      try {
        rows = await parquetReadObjects({
          file: pf.buffer,
          metadata: pf.metadata,
          ...(columns ? { columns } : {}),
          rowStart,
          rowEnd: rowStart + n,
          utf8: false, // BYTE_ARRAY without a string annotation stays binary (jpg_0/jpg_1); UTF8 columns are strings
          compressors,
        });
      } catch (e) {
        throw new DataError(`${file}: cannot read row group ${g} (rows ${rowStart}-${rowStart + n - 1}): ${(e as Error).message}`);
      }
      yield { file, group: g, rowStart, rows: rows.map(toNodeValues) };
    }
  } finally {
    await pf.close();
    o.onClose?.(pf.bytesRead());
  }
}

/** Yield rows one at a time with their file row index (row groups are still read whole, one at a time). */
export async function* parquetRows(file: string, o: ParquetReadOptions = {}): AsyncGenerator<{ row: ParquetRow; index: number }> {
  for await (const b of parquetBatches(file, o)) {
    for (let i = 0; i < b.rows.length; i++) yield { row: b.rows[i], index: b.rowStart + i };
  }
}

/** Parquet files named by the arguments: a file as given, a folder as all its *.parquet files (recursively), sorted. */
export function listParquetFiles(inputs: string | readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.parquet')) out.push(p);
    }
  };
  for (const input of typeof inputs === 'string' ? [inputs] : inputs) {
    let st: fs.Stats;
    try {
      st = fs.statSync(input);
    } catch {
      throw new DataError(`${input}: no such file or folder`);
    }
    if (st.isDirectory()) {
      const before = out.length;
      walk(input);
      if (out.length === before) throw new DataError(`${input}: no .parquet files in this folder`);
    } else out.push(input);
  }
  return [...new Set(out.map((p) => path.resolve(p)))].sort();
}
