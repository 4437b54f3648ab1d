// The charts as vega-lite specifications (pure data, no rendering: src/report/charts.ts renders them to SVG and PNG).
// One builder per chart kind: a line chart (the run report's curves, the preference N_ref plots), a heat map with a
// colour bar (attention), a scatter plot by group (t-SNE) and a labelled grid of images (compare, sweep, attention).
// Every chart shares one look (CONFIG: white background, one font, light grid, black axes) and one palette.
import type { TopLevelSpec } from 'vega-lite';

/** The series / group colours, in order (matplotlib's tab10). */
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
/** Found by fontconfig for sharp (librsvg) and by browsers alike. */
export const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';

const CONFIG = {
  font: FONT,
  view: { stroke: 'black' },
  axis: {
    gridColor: '#e5e5e5',
    domainColor: 'black',
    tickColor: 'black',
    labelColor: 'black',
    titleColor: 'black',
    labelFontSize: 10,
    titleFontSize: 12,
  },
  legend: { labelFontSize: 11, labelLimit: 220 },
  // centred on the whole picture, so that a title wider than the plot is not cut at the left edge
  title: { fontSize: 14, color: 'black', frame: 'bounds' },
};

/** A size that is the whole picture's (legend, axes and title inside it), not only the plot area's. */
const FIT = { type: 'fit', contains: 'padding' } as const;

// ---------------------------------------------------------------------------------------------------------------
// Line chart

export interface LineSeries {
  name: string;
  values: number[];
  color?: string;
  dashed?: boolean;
}

export interface LineChartOptions {
  title: string;
  series: LineSeries[];
  /** x of each value (default: its index). */
  x?: number[];
  /** Ticks at exactly these x values (e.g. N_ref = 1, 2, 4, 8); default: round ticks, integers only when every x is one. */
  xTicks?: number[];
  xLabel?: string;
  yLabel?: string;
  /** Fixed y range (default: the data's). */
  yRange?: [number, number];
  /** A dot at every point (default: only a series with a single finite value gets one, so that it shows). */
  points?: boolean;
  legend?: 'right' | 'bottom';
  /** Size of the whole picture in px (default 420 x 260). */
  width?: number;
  height?: number;
}

/** One line per series (non-finite values are skipped), one legend entry per series: its colour and dash. */
export function lineChartSpec(o: LineChartOptions): TopLevelSpec {
  const n = Math.max(1, ...o.series.map((s) => s.values.length));
  const xs = o.x ?? Array.from({ length: n }, (_, i) => i);
  const names = o.series.map((s) => s.name);
  const rows = o.series.flatMap((s) =>
    s.values.slice(0, xs.length).flatMap((v, j) => (Number.isFinite(v) ? [{ series: s.name, x: xs[j], y: v }] : [])),
  );
  const single = new Set(o.series.filter((s) => s.values.slice(0, xs.length).filter(Number.isFinite).length === 1).map((s) => s.name));
  const dots = o.points ? rows : rows.filter((r) => single.has(r.series));
  const series = { domain: names, range: o.series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]) };
  const integers = xs.every(Number.isInteger);
  const encoding = {
    x: {
      field: 'x',
      type: 'quantitative',
      title: o.xLabel ?? null,
      scale: { zero: false, nice: false, padding: o.points ? 12 : 0 },
      axis: o.xTicks ? { values: o.xTicks, grid: false } : { tickMinStep: integers ? 1 : undefined, format: integers ? 'd' : undefined, grid: false },
    },
    y: {
      field: 'y',
      type: 'quantitative',
      title: o.yLabel ?? null,
      scale: o.yRange ? { domain: o.yRange, zero: false, nice: false } : { zero: false },
    },
    color: { field: 'series', type: 'nominal', scale: series, legend: { title: null, orient: o.legend ?? 'right', symbolType: 'stroke' } },
    // the series' name on its line (the SVG's aria-label), for readers and tests
    description: { field: 'series', type: 'nominal' },
  };
  const strokeDash = {
    field: 'series',
    type: 'nominal',
    scale: { domain: names, range: o.series.map((s) => (s.dashed ? [6, 4] : [1, 0])) },
    legend: { title: null, orient: o.legend ?? 'right', symbolType: 'stroke' },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: o.width ?? 420,
    height: o.height ?? 260,
    autosize: FIT,
    background: 'white',
    config: CONFIG,
    encoding,
    layer: [
      { data: { values: rows }, mark: { type: 'line', strokeWidth: 2 }, encoding: { strokeDash } },
      { data: { values: dots }, mark: { type: 'point', filled: true, opacity: 1, size: 40 } },
    ],
  } as TopLevelSpec;
}

// ---------------------------------------------------------------------------------------------------------------
// Heat map

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

/** At most about 30 labelled ticks: every k-th index. */
const thinned = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => i % Math.max(1, Math.ceil(n / 30)) === 0);

/** One cell per value coloured by viridis (non-finite ones grey) and a colour bar; at most ~30 labels per axis. */
export function heatmapSpec(o: HeatmapOptions): TopLevelSpec {
  const R = o.values.length;
  const C = Math.max(0, ...o.values.map((r) => r.length));
  const finite = o.values.flat().filter(Number.isFinite);
  const lo = o.vmin ?? (finite.length ? Math.min(...finite) : 0);
  let hi = o.vmax ?? (finite.length ? Math.max(...finite) : 1);
  if (hi === lo) hi = lo + 1;
  const cells = o.values.flatMap((row, r) => row.map((v, c) => ({ r, c, v: Number.isFinite(v) ? v : null })));
  // labels travel as parameters (data), never spliced into an expression
  const axis = (param: 'rowLabels' | 'colLabels', labels: string[] | undefined, n: number, title?: string) => ({
    values: thinned(n),
    labelExpr: labels ? `${param}[datum.value]` : 'datum.value',
    labelAngle: 0,
    title: title ?? null,
    grid: false,
  });
  const band = (n: number) => ({ domain: Array.from({ length: n }, (_, i) => i), paddingInner: 0, paddingOuter: 0 });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: o.plotWidth ?? 480,
    height: o.plotHeight ?? 400,
    background: 'white',
    config: CONFIG,
    params: [
      { name: 'rowLabels', value: o.rowLabels ?? [] },
      { name: 'colLabels', value: o.colLabels ?? [] },
    ],
    encoding: {
      x: { field: 'c', type: 'ordinal', scale: band(C), axis: axis('colLabels', o.colLabels, C, o.xLabel) },
      y: { field: 'r', type: 'ordinal', scale: band(R), axis: axis('rowLabels', o.rowLabels, R, o.yLabel) },
    },
    layer: [
      {
        data: { values: cells.filter((x) => x.v !== null) },
        mark: { type: 'rect', strokeWidth: 0 },
        encoding: {
          color: {
            field: 'v',
            type: 'quantitative',
            scale: { scheme: 'viridis', domain: [lo, hi], clamp: true },
            legend: { title: null, gradientLength: Math.max(60, o.plotHeight ?? 400), gradientThickness: 16 },
          },
        },
      },
      { data: { values: cells.filter((x) => x.v === null) }, mark: { type: 'rect', strokeWidth: 0, color: '#cccccc' } },
    ],
  } as TopLevelSpec;
}

// ---------------------------------------------------------------------------------------------------------------
// Scatter plot

export interface ScatterOptions {
  title: string;
  points: { x: number; y: number; group: string }[];
  xLabel?: string;
  yLabel?: string;
  /** Size of the whole picture in px (default 560 x 440). */
  width?: number;
  height?: number;
  /** Group order and colours (default: order of first appearance, the palette). */
  groups?: { name: string; color?: string }[];
}

/** Points coloured by group with a legend. */
export function scatterSpec(o: ScatterOptions): TopLevelSpec {
  const names = o.groups?.map((g) => g.name) ?? [...new Set(o.points.map((p) => p.group))];
  const colors = names.map((n, i) => o.groups?.find((g) => g.name === n)?.color ?? PALETTE[i % PALETTE.length]);
  const known = new Set(names);
  const points = o.points.filter((p) => known.has(p.group) && Number.isFinite(p.x) && Number.isFinite(p.y));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: o.width ?? 560,
    height: o.height ?? 440,
    autosize: FIT,
    background: 'white',
    config: CONFIG,
    data: { values: points },
    mark: { type: 'point', filled: true, opacity: 0.85, size: 40 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.xLabel ?? null, scale: { zero: false, padding: 8 }, axis: { grid: false } },
      y: { field: 'y', type: 'quantitative', title: o.yLabel ?? null, scale: { zero: false, padding: 8 } },
      color: { field: 'group', type: 'nominal', scale: { domain: names, range: colors }, legend: { title: null, symbolType: 'circle' } },
      description: { field: 'group', type: 'nominal' },
    },
  } as TopLevelSpec;
}

// ---------------------------------------------------------------------------------------------------------------
// Image grid

export interface ImageGridOptions {
  rowLabels?: string[];
  colLabels?: string[];
  title?: string;
  /** Each image is fitted (aspect kept, white margins) into a square of this size (default 256). */
  cellSize?: number;
}

export interface ImageGridLayout {
  rows: number;
  cols: number;
  width: number;
  height: number;
  cellSize: number;
  /** Top-left corner of cell (r, c). */
  origin: (r: number, c: number) => [number, number];
}

/** Rough width of DejaVu Sans text at `size` px (about 0.6 em a character; vega, with no canvas to measure text,
 * assumes 0.8 em, too wide for this font, so the grid fits its labels itself). */
const textWidth = (s: string, size: number) => s.length * size * 0.6;

/** `s` cut to about `px` wide at `size` px, ending in an ellipsis when cut. */
function fit(s: string, px: number, size: number): string {
  const max = Math.max(1, Math.floor(px / (size * 0.6)));
  return s.length <= max ? s : s.slice(0, Math.max(1, max - 1)) + '…';
}

/** Where the grid's cells go: title on top, column labels above, row labels left, a caption line under each cell when
 * any cell has one. */
export function imageGridLayout(cells: readonly (readonly (object | null)[])[], o: ImageGridOptions): ImageGridLayout {
  const rows = Math.max(cells.length, o.rowLabels?.length ?? 0);
  const cols = Math.max(0, o.colLabels?.length ?? 0, ...cells.map((r) => r.length));
  const S = o.cellSize ?? 256;
  const gap = 8;
  const cellLabH = cells.some((r) => r.some((c) => (c as { label?: string } | null)?.label)) ? 18 : 0;
  const titleH = o.title ? 30 : 0;
  const colH = o.colLabels?.length ? 20 : 0;
  const rowW = o.rowLabels?.some((s) => s) ? Math.ceil(Math.min(220, Math.max(...o.rowLabels.map((s) => textWidth(s, 12)))) + 14) : 0;
  return {
    rows,
    cols,
    cellSize: S,
    width: gap + rowW + cols * (S + gap),
    height: gap + titleH + colH + rows * (S + cellLabH + gap),
    origin: (r, c) => [gap + rowW + c * (S + gap), gap + titleH + colH + r * (S + cellLabH + gap)],
  };
}

/** The grid as one picture: an image mark per cell (`url`: a data URL of the already fitted image) and text marks for
 * the title, the row and column labels and the captions (too long ones cut, ending in an ellipsis). */
export function imageGridSpec(cells: ({ url: string; label?: string } | null)[][], o: ImageGridOptions): TopLevelSpec {
  const g = imageGridLayout(cells, o);
  const S = g.cellSize;
  const at = { x: { field: 'x', type: 'quantitative', scale: null }, y: { field: 'y', type: 'quantitative', scale: null } };
  const text = (
    values: { x: number; y: number; text: string }[],
    width: number,
    mark: { align: string; fontSize: number } & Record<string, unknown>,
  ) => ({
    data: { values: values.map((v) => ({ ...v, text: fit(v.text, width, mark.fontSize) })) },
    mark: { type: 'text', baseline: 'alphabetic', aria: false, ...mark },
    encoding: { ...at, text: { field: 'text', type: 'nominal' } },
  });
  const placed = cells.flatMap((row, r) => row.flatMap((cell, c) => (cell ? [{ cell, xy: g.origin(r, c) }] : [])));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: g.width,
    height: g.height,
    autosize: 'none',
    padding: 0,
    background: 'white',
    config: { ...CONFIG, view: { stroke: null } },
    layer: [
      {
        data: { values: placed.map((p) => ({ x: p.xy[0], y: p.xy[1], url: p.cell.url })) },
        mark: { type: 'image', width: S, height: S, align: 'left', baseline: 'top', aspect: false, aria: false },
        encoding: { ...at, url: { field: 'url', type: 'nominal' } },
      },
      text(o.title ? [{ x: g.width / 2, y: 8 + 18, text: o.title }] : [], g.width - 16, { align: 'center', fontSize: 15, fontWeight: 'bold' }),
      text(
        (o.colLabels ?? []).map((s, c) => ({ x: g.origin(0, c)[0] + S / 2, y: g.origin(0, c)[1] - 6, text: s })),
        S,
        { align: 'center', fontSize: 12, fontWeight: 'bold' },
      ),
      text(
        (o.rowLabels ?? []).map((s, r) => ({ x: g.origin(r, 0)[0] - 8, y: g.origin(r, 0)[1] + S / 2 + 4, text: s })),
        Math.max(12, g.origin(0, 0)[0] - 20),
        { align: 'right', fontSize: 12, fontWeight: 'bold' },
      ),
      text(
        placed.filter((p) => p.cell.label).map((p) => ({ x: p.xy[0] + S / 2, y: p.xy[1] + S + 13, text: p.cell.label! })),
        S,
        { align: 'center', fontSize: 11, aria: true },
      ),
    ],
  } as TopLevelSpec;
}
