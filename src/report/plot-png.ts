// Figures as SVG (drawn here, in the style of src/report/svg.ts: white background, sans-serif, light grid, black axes,
// the same palette) rendered to PNG by sharp (librsvg; text uses the system fonts through fontconfig). Each plot has an
// `...Svg` form (a string, for HTML reports and tests) and a PNG form. Plots: line plot (accuracy vs N_ref), heat map
// with a colour bar (attention: rows = image tokens, columns = prototypes), scatter plot by group (t-SNE), and a grid
// of images with row / column labels (compare and sweep grids).
import sharp, { type OverlayOptions } from 'sharp';
import { escapeXml, niceTicks } from './svg.js';

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
const FONT = 'font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif"';

/** Rasterise an SVG string at 1 px per SVG unit. */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: 72 }).png().toBuffer();
}

const f1 = (v: number) => v.toFixed(1);
const fmtTick = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4))));
/** Rough text width of DejaVu Sans at `size` px (for layout only). */
const textWidth = (s: string, size: number) => s.length * size * 0.6;
const text = (x: number, y: number, s: string, o: { size?: number; anchor?: 'start' | 'middle' | 'end'; bold?: boolean; extra?: string } = {}) =>
  `<text x="${f1(x)}" y="${f1(y)}" text-anchor="${o.anchor ?? 'start'}" ${FONT} font-size="${o.size ?? 11}"${o.bold ? ' font-weight="bold"' : ''}${o.extra ? ' ' + o.extra : ''}>${escapeXml(s)}</text>`;
const open = (W: number, H: number, title: string) => [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(title)}">`,
  `<rect width="${W}" height="${H}" fill="white"/>`,
  title ? text(W / 2, 20, title, { size: 14, anchor: 'middle', bold: true }) : '',
];

function range(values: number[], pad = 0): [number, number] {
  const v = values.filter(Number.isFinite);
  if (!v.length) return [0, 1];
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (lo === hi) [lo, hi] = [lo - (Math.abs(lo) * 0.1 || 1), hi + (Math.abs(hi) * 0.1 || 1)];
  const d = (hi - lo) * pad;
  return [lo - d, hi + d];
}

interface Frame {
  parts: string[];
  X: (v: number) => number;
  Y: (v: number) => number;
  plot: { l: number; t: number; w: number; h: number };
}

/** Axes with ticks, grid lines and labels on [x0,x1] x [y0,y1]; legend space on the right when `legendW` > 0. */
function frame(
  W: number,
  H: number,
  o: { title: string; xLabel?: string; yLabel?: string; x: [number, number]; y: [number, number]; xTicks?: number[]; legendW?: number },
): Frame {
  const m = { l: 62, r: 14 + (o.legendW ?? 0), t: o.title ? 34 : 14, b: 48 };
  const plot = { l: m.l, t: m.t, w: W - m.l - m.r, h: H - m.t - m.b };
  const yt = niceTicks(o.y[0], o.y[1]);
  const xt = o.xTicks ?? niceTicks(o.x[0], o.x[1], 6);
  const y0 = Math.min(o.y[0], yt[0] ?? o.y[0]);
  const y1 = Math.max(o.y[1], yt[yt.length - 1] ?? o.y[1]);
  const X = (v: number) => plot.l + ((v - o.x[0]) / (o.x[1] - o.x[0] || 1)) * plot.w;
  const Y = (v: number) => plot.t + plot.h - ((v - y0) / (y1 - y0 || 1)) * plot.h;
  const parts = open(W, H, o.title);
  for (const v of yt) {
    parts.push(`<line x1="${plot.l}" x2="${plot.l + plot.w}" y1="${f1(Y(v))}" y2="${f1(Y(v))}" stroke="#e5e5e5"/>`);
    parts.push(text(plot.l - 6, Y(v) + 4, fmtTick(v), { size: 10, anchor: 'end' }));
  }
  for (const v of xt.filter((v) => v >= o.x[0] - 1e-9 && v <= o.x[1] + 1e-9)) {
    parts.push(`<line x1="${f1(X(v))}" x2="${f1(X(v))}" y1="${plot.t + plot.h}" y2="${plot.t + plot.h + 4}" stroke="black"/>`);
    parts.push(text(X(v), plot.t + plot.h + 16, fmtTick(v), { size: 10, anchor: 'middle' }));
  }
  parts.push(`<rect x="${plot.l}" y="${plot.t}" width="${plot.w}" height="${plot.h}" fill="none" stroke="black"/>`);
  if (o.xLabel) parts.push(text(plot.l + plot.w / 2, H - 10, o.xLabel, { size: 12, anchor: 'middle' }));
  if (o.yLabel)
    parts.push(text(0, 0, o.yLabel, { size: 12, anchor: 'middle', extra: `transform="translate(16 ${f1(plot.t + plot.h / 2)}) rotate(-90)"` }));
  return { parts, X, Y, plot };
}

function legend(parts: string[], x: number, y: number, items: { name: string; color: string; dash?: boolean; marker?: 'line' | 'dot' }[]): void {
  items.forEach((it, i) => {
    const ly = y + i * 18;
    if (it.marker === 'dot') parts.push(`<circle cx="${x + 9}" cy="${ly}" r="4" fill="${it.color}"/>`);
    else
      parts.push(
        `<line x1="${x}" x2="${x + 18}" y1="${ly}" y2="${ly}" stroke="${it.color}" stroke-width="2.5"${it.dash ? ' stroke-dasharray="5 3"' : ''}/>`,
      );
    parts.push(text(x + 24, ly + 4, it.name, { size: 11 }));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Line plot

export interface LineSeries {
  name: string;
  values: number[];
  color?: string;
  dashed?: boolean;
}

export interface LinePlotOptions {
  title: string;
  x: number[];
  series: LineSeries[];
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
  /** Fixed y range (default: the data's, padded). */
  yRange?: [number, number];
}

/** Lines with a dot at every point; x ticks at the given x values (e.g. N_ref = 1, 2, 4, 8). */
export function linePlotSvg(o: LinePlotOptions): string {
  const W = o.width ?? 560;
  const H = o.height ?? 360;
  const legendW = Math.ceil(Math.min(220, 40 + Math.max(0, ...o.series.map((s) => textWidth(s.name, 11)))));
  const fr = frame(W, H, {
    title: o.title,
    xLabel: o.xLabel,
    yLabel: o.yLabel,
    x: range(o.x, 0.04),
    y:
      o.yRange ??
      range(
        o.series.flatMap((s) => s.values),
        0.08,
      ),
    xTicks: o.x,
    legendW,
  });
  o.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const pts = s.values
      .map((v, j) => (Number.isFinite(v) && j < o.x.length ? [fr.X(o.x[j]), fr.Y(v)] : null))
      .filter((p): p is number[] => p !== null);
    const g = [`<g class="series" data-name="${escapeXml(s.name)}">`];
    if (pts.length > 1)
      g.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${pts.map((p) => p.map(f1).join(',')).join(' ')}"/>`,
      );
    for (const [x, y] of pts) g.push(`<circle cx="${f1(x)}" cy="${f1(y)}" r="3.5" fill="${color}"/>`);
    fr.parts.push(...g, '</g>');
  });
  legend(
    fr.parts,
    fr.plot.l + fr.plot.w + 14,
    fr.plot.t + 8,
    o.series.map((s, i) => ({ name: s.name, color: s.color ?? PALETTE[i % PALETTE.length], dash: s.dashed })),
  );
  return [...fr.parts, '</svg>'].join('\n');
}

export const linePlotPng = (o: LinePlotOptions) => svgToPng(linePlotSvg(o));

/** Accuracy (%) vs N_ref from an N_ref sweep (src/preference/metrics.ts NRefSweep): per model a solid seen line and
 * a dashed unseen line in one colour (Fig. 5), or one line per model over all test users (Fig. 7). */
export function nRefPlotSvg(
  sweep: { nRef: number[]; series: { model: string; all: number[]; seen: number[]; unseen: number[] }[] },
  o: { title?: string; groups?: 'seen-unseen' | 'all'; width?: number; height?: number } = {},
): string {
  const both = (o.groups ?? 'seen-unseen') === 'seen-unseen';
  const pct = (v: number[]) => v.map((x) => x * 100);
  const series: LineSeries[] = sweep.series.flatMap((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    return both
      ? [
          { name: `${s.model} seen`, values: pct(s.seen), color },
          { name: `${s.model} unseen`, values: pct(s.unseen), color, dashed: true },
        ]
      : [{ name: s.model, values: pct(s.all), color }];
  });
  return linePlotSvg({
    title: o.title ?? (both ? 'Top-1 accuracy on seen-unseen data with different N_ref' : 'Top-1 accuracy with different N_ref'),
    x: sweep.nRef,
    series,
    xLabel: 'N_ref',
    yLabel: 'Top-1 accuracy (%)',
    ...(o.width ? { width: o.width } : {}),
    ...(o.height ? { height: o.height } : {}),
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Heat map

const VIRIDIS = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'];

/** Viridis-like colour for t in [0, 1] (linear between 10 stops of matplotlib's viridis). */
export function viridis(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const a = VIRIDIS[i];
  const b = VIRIDIS[i + 1];
  const mix = (k: number) => Math.round(parseInt(a.slice(k, k + 2), 16) * (1 - (x - i)) + parseInt(b.slice(k, k + 2), 16) * (x - i));
  return `#${[1, 3, 5].map((k) => mix(k).toString(16).padStart(2, '0')).join('')}`;
}

export interface HeatmapOptions {
  title: string;
  /** values[row][col] */
  values: number[][];
  rowLabels?: string[];
  colLabels?: string[];
  xLabel?: string;
  yLabel?: string;
  /** Colour range (default: min and max of the values). */
  vmin?: number;
  vmax?: number;
  /** Plot area size in px (default 480 x 400); cells stretch to fill it. */
  plotWidth?: number;
  plotHeight?: number;
}

/** Cells coloured by value with a colour bar; at most ~30 labels per axis (thinned evenly when there are more). */
export function heatmapSvg(o: HeatmapOptions): string {
  const R = o.values.length;
  const C = Math.max(0, ...o.values.map((r) => r.length));
  const [lo, hi] = [o.vmin ?? Math.min(...o.values.flat().filter(Number.isFinite)), o.vmax ?? Math.max(...o.values.flat().filter(Number.isFinite))];
  const span = hi - lo || 1;
  const rowLabels = o.rowLabels ?? Array.from({ length: R }, (_, i) => String(i));
  const colLabels = o.colLabels ?? Array.from({ length: C }, (_, i) => String(i));
  const pw = o.plotWidth ?? 480;
  const ph = o.plotHeight ?? 400;
  const rowLabW = Math.ceil(Math.min(140, Math.max(20, ...rowLabels.map((s) => textWidth(s, 10))))) + 8;
  const m = { l: (o.yLabel ? 24 : 6) + rowLabW, t: o.title ? 36 : 12, r: 90, b: (o.xLabel ? 26 : 6) + 22 };
  const W = m.l + pw + m.r;
  const H = m.t + ph + m.b;
  const cw = pw / (C || 1);
  const ch = ph / (R || 1);
  const parts = open(W, H, o.title);
  parts.push(`<g class="cells" data-rows="${R}" data-cols="${C}" shape-rendering="crispEdges">`);
  o.values.forEach((row, i) =>
    row.forEach((v, j) =>
      parts.push(
        `<rect x="${f1(m.l + j * cw)}" y="${f1(m.t + i * ch)}" width="${f1(cw + 1)}" height="${f1(ch + 1)}" fill="${Number.isFinite(v) ? viridis((v - lo) / span) : '#cccccc'}"/>`,
      ),
    ),
  );
  parts.push('</g>');
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="black"/>`);
  const every = (n: number) => Math.max(1, Math.ceil(n / 30));
  rowLabels.forEach((s, i) => {
    if (i % every(R) === 0 || R <= 30) parts.push(text(m.l - 5, m.t + (i + 0.5) * ch + 3.5, s, { size: 10, anchor: 'end' }));
  });
  colLabels.forEach((s, j) => {
    if (j % every(C) === 0 || C <= 30) parts.push(text(m.l + (j + 0.5) * cw, m.t + ph + 14, s, { size: 10, anchor: 'middle' }));
  });
  if (o.xLabel) parts.push(text(m.l + pw / 2, H - 8, o.xLabel, { size: 12, anchor: 'middle' }));
  if (o.yLabel) parts.push(text(0, 0, o.yLabel, { size: 12, anchor: 'middle', extra: `transform="translate(14 ${f1(m.t + ph / 2)}) rotate(-90)"` }));
  // Colour bar: 64 bands, ticks at nice values.
  const bx = m.l + pw + 18;
  const bw = 16;
  for (let k = 0; k < 64; k++)
    parts.push(
      `<rect x="${bx}" y="${f1(m.t + ph - ((k + 1) / 64) * ph)}" width="${bw}" height="${f1(ph / 64 + 0.5)}" fill="${viridis((k + 0.5) / 64)}"/>`,
    );
  parts.push(`<rect x="${bx}" y="${m.t}" width="${bw}" height="${ph}" fill="none" stroke="black"/>`);
  for (const v of niceTicks(lo, hi).filter((v) => v >= lo - 1e-12 && v <= hi + 1e-12)) {
    const y = m.t + ph - ((v - lo) / span) * ph;
    parts.push(`<line x1="${bx + bw}" x2="${bx + bw + 4}" y1="${f1(y)}" y2="${f1(y)}" stroke="black"/>`);
    parts.push(text(bx + bw + 7, y + 3.5, fmtTick(v), { size: 10 }));
  }
  return [...parts, '</svg>'].join('\n');
}

export const heatmapPng = (o: HeatmapOptions) => svgToPng(heatmapSvg(o));

// ---------------------------------------------------------------------------------------------------------------
// Scatter plot

export interface ScatterOptions {
  title: string;
  points: { x: number; y: number; group: string }[];
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
  /** Group order and colours (default: order of first appearance, the palette). */
  groups?: { name: string; color?: string }[];
}

/** Points coloured by group with a legend (one `<g class="group">` per group). */
export function scatterSvg(o: ScatterOptions): string {
  const W = o.width ?? 560;
  const H = o.height ?? 440;
  const names = o.groups?.map((g) => g.name) ?? [...new Set(o.points.map((p) => p.group))];
  const color = (n: string, i: number) => o.groups?.find((g) => g.name === n)?.color ?? PALETTE[i % PALETTE.length];
  const legendW = Math.ceil(Math.min(200, 40 + Math.max(0, ...names.map((s) => textWidth(s, 11)))));
  const fr = frame(W, H, {
    title: o.title,
    xLabel: o.xLabel,
    yLabel: o.yLabel,
    x: range(
      o.points.map((p) => p.x),
      0.05,
    ),
    y: range(
      o.points.map((p) => p.y),
      0.05,
    ),
    legendW,
  });
  names.forEach((n, i) => {
    const pts = o.points.filter((p) => p.group === n && Number.isFinite(p.x) && Number.isFinite(p.y));
    fr.parts.push(`<g class="group" data-name="${escapeXml(n)}" fill="${color(n, i)}" fill-opacity="0.85">`);
    for (const p of pts) fr.parts.push(`<circle cx="${f1(fr.X(p.x))}" cy="${f1(fr.Y(p.y))}" r="3.5"/>`);
    fr.parts.push('</g>');
  });
  legend(
    fr.parts,
    fr.plot.l + fr.plot.w + 14,
    fr.plot.t + 8,
    names.map((n, i) => ({ name: n, color: color(n, i), marker: 'dot' })),
  );
  return [...fr.parts, '</svg>'].join('\n');
}

export const scatterPng = (o: ScatterOptions) => svgToPng(scatterSvg(o));

// ---------------------------------------------------------------------------------------------------------------
// Image grid

export interface GridCell {
  png: Buffer;
  label?: string;
}

export interface ImageGridOptions {
  rowLabels?: string[];
  colLabels?: string[];
  title?: string;
  /** Each image is fitted (aspect kept, white margins) into a square of this size (default 256). */
  cellSize?: number;
}

/** Text overlay of the grid (labels and title) as SVG; exported for tests. */
export function imageGridSvg(
  rows: number,
  cols: number,
  cells: (GridCell | null)[][],
  o: ImageGridOptions,
): { svg: string; width: number; height: number; origin: (r: number, c: number) => [number, number] } {
  const S = o.cellSize ?? 256;
  const gap = 8;
  const cellLabH = cells.some((r) => r.some((c) => c?.label)) ? 18 : 0;
  const titleH = o.title ? 30 : 0;
  const colH = o.colLabels?.length ? 20 : 0;
  const rowW = o.rowLabels?.length ? Math.ceil(Math.min(220, Math.max(...o.rowLabels.map((s) => textWidth(s, 12))) + 14)) : 0;
  const width = gap + rowW + cols * (S + gap);
  const height = gap + titleH + colH + rows * (S + cellLabH + gap);
  const origin = (r: number, c: number): [number, number] => [gap + rowW + c * (S + gap), gap + titleH + colH + r * (S + cellLabH + gap)];
  const fit = (s: string, px: number, size: number) => {
    const max = Math.max(1, Math.floor(px / (size * 0.6)));
    return s.length <= max ? s : s.slice(0, Math.max(1, max - 1)) + '…';
  };
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`];
  if (o.title) parts.push(text(width / 2, gap + 18, fit(o.title, width - 2 * gap, 15), { size: 15, anchor: 'middle', bold: true }));
  o.colLabels?.forEach((s, c) => {
    const [x, y] = origin(0, c);
    parts.push(text(x + S / 2, y - 6, fit(s, S, 12), { size: 12, anchor: 'middle', bold: true }));
  });
  o.rowLabels?.forEach((s, r) => {
    const [x, y] = origin(r, 0);
    parts.push(text(x - 8, y + S / 2 + 4, fit(s, rowW - 12, 12), { size: 12, anchor: 'end', bold: true }));
  });
  cells.forEach((row, r) =>
    row.forEach((cell, c) => {
      if (!cell?.label) return;
      const [x, y] = origin(r, c);
      parts.push(`<g class="cell-label">${text(x + S / 2, y + S + 13, fit(cell.label, S, 11), { size: 11, anchor: 'middle' })}</g>`);
    }),
  );
  parts.push('</svg>');
  return { svg: parts.join('\n'), width, height, origin };
}

/** A grid of images (rows may be ragged; null leaves a blank) with row / column labels, a caption under each cell
 * that has one, and a title; returns a PNG Buffer. */
export async function imageGrid(cells: (GridCell | null)[][], o: ImageGridOptions = {}): Promise<Buffer> {
  const rows = Math.max(cells.length, o.rowLabels?.length ?? 0);
  const cols = Math.max(0, o.colLabels?.length ?? 0, ...cells.map((r) => r.length));
  if (rows === 0 || cols === 0) throw new RangeError('imageGrid: no cells');
  const S = o.cellSize ?? 256;
  const g = imageGridSvg(rows, cols, cells, o);
  const layers: OverlayOptions[] = [];
  for (let r = 0; r < cells.length; r++) {
    for (let c = 0; c < cells[r].length; c++) {
      const cell = cells[r][c];
      if (!cell) continue;
      const img = await sharp(cell.png)
        .resize(S, S, { fit: 'contain', background: { r: 255, g: 255, b: 255, alpha: 1 } })
        .flatten({ background: '#ffffff' })
        .png()
        .toBuffer();
      const [left, top] = g.origin(r, c);
      layers.push({ input: img, left, top });
    }
  }
  layers.push({ input: Buffer.from(g.svg), left: 0, top: 0 });
  return sharp({ create: { width: g.width, height: g.height, channels: 3, background: '#ffffff' } })
    .composite(layers)
    .png()
    .toBuffer();
}
