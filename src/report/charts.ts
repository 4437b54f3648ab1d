// Charts rendered by vega (the specs are vega-lite, src/report/chart-specs.ts): to SVG in Node by a headless vega View
// (no canvas: text widths are estimated), to PNG by sharp from that SVG (librsvg; text uses the system fonts through
// fontconfig, FONT). One function per chart kind, each as SVG (HTML reports, tests) and PNG (figure files):
//   lineChart   the run report's curves, the preference N_ref plots
//   heatmap     attention of image tokens to prototypes, with a colour bar
//   scatter     t-SNE maps, points by group
//   imageGrid   a labelled grid of images (compare, sweep, attention panels), PNG only
// vega and vega-lite are loaded on the first chart, not at start-up.
import sharp from 'sharp';
import type { TopLevelSpec } from 'vega-lite';
import {
  heatmapSpec,
  imageGridLayout,
  imageGridSpec,
  lineChartSpec,
  scatterSpec,
  type HeatmapOptions,
  type ImageGridOptions,
  type LineChartOptions,
  type ScatterOptions,
} from './chart-specs.js';

export { PALETTE, FONT, imageGridLayout } from './chart-specs.js';
export type { HeatmapOptions, ImageGridOptions, LineChartOptions, LineSeries, ScatterOptions } from './chart-specs.js';

let libs: Promise<[typeof import('vega'), typeof import('vega-lite')]> | null = null;

/** A vega-lite spec as an SVG string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  libs ??= Promise.all([import('vega'), import('vega-lite')]);
  const [vega, vl] = await libs;
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterise an SVG string at 1 px per SVG unit (no size limit: an image grid embeds its images). */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: 72, unlimited: true }).png().toBuffer();
}

export const lineChartSvg = (o: LineChartOptions) => renderSvg(lineChartSpec(o));
export const lineChartPng = async (o: LineChartOptions) => svgToPng(await lineChartSvg(o));
export const heatmapSvg = (o: HeatmapOptions) => renderSvg(heatmapSpec(o));
export const heatmapPng = async (o: HeatmapOptions) => svgToPng(await heatmapSvg(o));
export const scatterSvg = (o: ScatterOptions) => renderSvg(scatterSpec(o));
export const scatterPng = async (o: ScatterOptions) => svgToPng(await scatterSvg(o));

export interface GridCell {
  png: Buffer;
  label?: string;
}

/** A grid of images (rows may be ragged; null leaves a blank) with row / column labels, a caption under each cell
 * that has one, and a title, as SVG with the images embedded. Each image is fitted into its square by sharp first
 * (aspect kept, white margins), so the chart places it 1:1. */
export async function imageGridSvg(cells: (GridCell | null)[][], o: ImageGridOptions = {}): Promise<string> {
  const g = imageGridLayout(cells, o);
  if (g.rows === 0 || g.cols === 0) throw new RangeError('imageGrid: no cells');
  const S = g.cellSize;
  const fitted = [];
  for (const row of cells) {
    const out = [];
    for (const cell of row) {
      if (!cell) {
        out.push(null);
        continue;
      }
      const png = await sharp(cell.png)
        .resize(S, S, { fit: 'contain', background: { r: 255, g: 255, b: 255, alpha: 1 } })
        .flatten({ background: '#ffffff' })
        .png()
        .toBuffer();
      out.push({ url: `data:image/png;base64,${png.toString('base64')}`, label: cell.label });
    }
    fitted.push(out);
  }
  return renderSvg(imageGridSpec(fitted, o));
}

/** The image grid as a PNG Buffer (its size: imageGridLayout's). */
export const imageGrid = async (cells: (GridCell | null)[][], o: ImageGridOptions = {}) => svgToPng(await imageGridSvg(cells, o));
