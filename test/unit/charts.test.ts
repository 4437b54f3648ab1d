// The charts (src/report/charts.ts, vega-lite specs rendered by vega to SVG and by sharp to PNG), one test per kind:
// the marks in the SVG follow the data (one line / point / cell / image per datum, legend entries, thinned labels),
// the PNG decodes at the asked size, text renders (fonts through fontconfig) and colours land where the data says.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import {
  heatmapPng,
  heatmapSvg,
  imageGrid,
  imageGridLayout,
  imageGridSvg,
  lineChartPng,
  lineChartSvg,
  PALETTE,
  scatterPng,
  scatterSvg,
  svgToPng,
} from '../../src/report/charts.js';

async function decode(png: Buffer) {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, info, px: (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)] };
}
type Decoded = Awaited<ReturnType<typeof decode>>;

/** Dark pixels in a region (text, lines). */
function dark(d: Decoded, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (d.px(x, y).every((v) => v < 128)) n++;
  return n;
}

/** Pixels of exactly one colour: their count and mean position. */
function colour(d: Decoded, rgb: number[]): { n: number; x: number; y: number } {
  let n = 0;
  let sx = 0;
  let sy = 0;
  for (let y = 0; y < d.info.height; y++)
    for (let x = 0; x < d.info.width; x++)
      if (d.px(x, y).every((v, k) => v === rgb[k])) {
        n++;
        sx += x;
        sy += y;
      }
  return { n, x: sx / n, y: sy / n };
}

/** Items of one kind in a vega SVG (its aria role description), with their aria-label and path. */
function items(svg: string, role: string): { label: string; d: string; attrs: string }[] {
  return [...svg.matchAll(/<path ([^>]*)\/>/g)]
    .map((m) => m[1])
    .filter((a) => a.includes(`aria-roledescription="${role}"`))
    .map((a) => ({ label: /aria-label="([^"]*)"/.exec(a)?.[1] ?? '', d: /\sd="([^"]*)"/.exec(a)?.[1] ?? '', attrs: a }));
}

/** The texts of each axis' (or legend's) labels, in order of appearance. */
function labels(svg: string, role: 'axis-label' | 'legend-label'): string[][] {
  return [...svg.matchAll(new RegExp(`class="mark-text role-${role}"[^>]*>(.*?)</g>`, 'g'))].map((m) =>
    [...m[1].matchAll(/>([^<]*)<\/text>/g)].map((t) => t[1]),
  );
}

test('text renders in SVG rasterised by sharp (a font is found)', async () => {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><rect width="200" height="40" fill="white"/><text x="10" y="28" font-family="DejaVu Sans, sans-serif" font-size="20">Accuracy 61.68</text></svg>`;
  const d = await decode(await svgToPng(svg));
  assert.equal(d.info.width, 200);
  assert.ok(dark(d, 0, 0, 200, 40) > 100, 'glyph pixels drawn');
});

test('line chart (N_ref plot): a line per series, dashed ones dashed, a dot per finite point, legend, PNG size and title', async () => {
  const nRef = [1, 2, 4, 8];
  const series = [
    { name: 'Ours, seen', values: [57, 59, 60, 61], color: PALETTE[0] },
    { name: 'Ours, unseen', values: [56, 58, 61, 62], color: PALETTE[0], dashed: true },
    { name: 'ViPer, seen', values: [55, 56, NaN, 58], color: PALETTE[1] },
    { name: 'chance (50 %)', values: [50, 50, 50, 50], color: '#999999', dashed: true },
  ];
  const o = {
    title: 'Top-1 accuracy vs N_ref',
    x: nRef,
    xTicks: nRef,
    series,
    points: true,
    xLabel: 'N_ref',
    yLabel: 'accuracy (%)',
    width: 400,
    height: 300,
  };
  const svg = await lineChartSvg(o);
  const lines = items(svg, 'line mark');
  assert.deepEqual(
    lines.map((l) => l.label),
    series.map((s) => s.name),
  );
  assert.deepEqual(
    lines.map((l) => l.d.split(/[ML]/).filter(Boolean).length),
    [4, 4, 3, 4],
    'one vertex per finite value',
  );
  assert.deepEqual(
    lines.map((l) => /stroke-dasharray="6,4"/.test(l.attrs)),
    [false, true, false, true],
  );
  assert.match(lines[0].attrs, /stroke="#1f77b4"/);
  assert.equal(items(svg, 'point').length, 15, 'no dot for a missing value');
  assert.deepEqual(
    labels(svg, 'legend-label').flat(),
    series.map((s) => s.name),
  );
  assert.deepEqual(labels(svg, 'axis-label')[0], ['1', '2', '4', '8'], 'x ticks at the N_ref values');
  const d = await decode(await lineChartPng(o));
  assert.deepEqual([d.info.width, d.info.height], [400, 300]);
  assert.deepEqual(d.px(2, 2), [255, 255, 255]);
  assert.ok(dark(d, 0, 0, 400, 24) > 20, 'title drawn');
  assert.ok(colour(d, [0x1f, 0x77, 0xb4]).n > 100, 'the first series drawn in its colour');
});

test('line chart (run report): lines without dots, a lone value still shows as a dot, integer steps', async () => {
  const svg = await lineChartSvg({
    title: 'clip score',
    series: [
      { name: 'clip', values: [0.1, 0.2, 0.15, 0.3, 0.25] },
      { name: 'once', values: [NaN, 0.2] },
    ],
    xLabel: 'step',
    legend: 'bottom',
  });
  assert.deepEqual(
    items(svg, 'line mark').map((l) => l.label),
    ['clip', 'once'],
  );
  assert.deepEqual(
    items(svg, 'point').map((p) => p.label),
    ['once'],
  );
  const xTicks = labels(svg, 'axis-label')[0];
  assert.ok(
    xTicks.every((t) => /^\d+$/.test(t)),
    `integer step ticks: ${xTicks}`,
  );
  assert.match(svg, /clip score/);
});

test('heat map: one cell per value (grey when not finite), thinned labels, colour bar, PNG colours follow the values', async () => {
  const values = Array.from({ length: 12 }, (_, i) => Array.from({ length: 5 }, (_, j) => i * 5 + j));
  values[3][2] = NaN;
  const o = { title: 'attention', values, xLabel: 'prototype', yLabel: 'image token', plotWidth: 250, plotHeight: 240 };
  const svg = await heatmapSvg(o);
  const cells = items(svg, 'rect mark');
  assert.equal(cells.length, 60);
  assert.equal(cells.filter((c) => /fill="#cccccc"/.test(c.attrs)).length, 1, 'the NaN cell is grey');
  assert.match(svg, /role-legend-gradient/, 'colour bar');
  const d = await decode(await heatmapPng(o));
  // The minimum (row 0, column 0) is viridis' first colour, the maximum (row 11, column 4) its last; a cell is
  // 50 x 20 px, and lies left of and above the other.
  const lo = colour(d, [0x44, 0x01, 0x54]);
  const hi = colour(d, [0xfd, 0xe7, 0x25]);
  assert.ok(lo.n >= 900 && hi.n >= 900, `a cell's area of each end colour: ${lo.n}, ${hi.n}`);
  assert.ok(lo.x < hi.x - 150 && lo.y < hi.y - 180, 'min top left, max bottom right');
  assert.ok(colour(d, [0xcc, 0xcc, 0xcc]).n >= 900, 'the grey cell drawn');
  // Many rows: about 30 labels, not 300.
  const big = await heatmapSvg({
    title: 't',
    values: Array.from({ length: 300 }, () => [0, 1]),
    rowLabels: Array.from({ length: 300 }, (_, i) => `t${i + 1}`),
  });
  const rowLabels = labels(big, 'axis-label').find((l) => l[0] === 't1');
  assert.ok(rowLabels && rowLabels.length <= 31 && rowLabels.length >= 20, `thinned row labels: ${rowLabels?.length}`);
});

test('scatter: one point per finite datum coloured by its group, a legend entry per group, PNG size', async () => {
  const points = ['a', 'b', 'c'].flatMap((g, k) => Array.from({ length: 7 + k }, (_, i) => ({ x: k * 10 + i, y: i % 3, group: g })));
  points.push({ x: NaN, y: 0, group: 'c' });
  const o = { title: 't-SNE', points, groups: [{ name: 'a' }, { name: 'b', color: '#000000' }, { name: 'c' }], width: 300, height: 240 };
  const svg = await scatterSvg(o);
  const dots = items(svg, 'point');
  assert.deepEqual(
    ['a', 'b', 'c'].map((g) => dots.filter((p) => p.label === g).length),
    [7, 8, 9],
  );
  assert.ok(dots.filter((p) => p.label === 'b').every((p) => /fill="#000000"/.test(p.attrs)));
  assert.deepEqual(labels(svg, 'legend-label').flat(), ['a', 'b', 'c']);
  const d = await decode(await scatterPng(o));
  assert.deepEqual([d.info.width, d.info.height], [300, 240]);
});

test('image grid: layout, cells placed, labels drawn, blanks and ragged rows', async () => {
  const solid = (r: number, g: number, b: number, w = 40, h = 40) =>
    sharp({ create: { width: w, height: h, channels: 3, background: { r, g, b } } })
      .png()
      .toBuffer();
  const cells = [
    [
      { png: await solid(255, 0, 0), label: 'red' },
      { png: await solid(0, 0, 255, 80, 40), label: 'blue, wide' },
    ],
    [null, { png: await solid(0, 160, 0) }, { png: await solid(0, 0, 0) }],
  ];
  const o = { rowLabels: ['seed 0', 'seed 1'], colLabels: ['A', 'B', 'C'], title: 'compare', cellSize: 64 };
  const svg = await imageGridSvg(cells, o);
  assert.equal(svg.match(/<image /g)?.length, 4, 'one image per non-empty cell');
  assert.equal(svg.match(/aria-roledescription="text mark"/g)?.length, 2, 'one caption per labelled cell');
  const d = await decode(await imageGrid(cells, o));
  const g = imageGridLayout(cells, o);
  assert.deepEqual([d.info.width, d.info.height], [g.width, g.height]);
  const centre = (r: number, c: number) => d.px(g.origin(r, c)[0] + 32, g.origin(r, c)[1] + 32);
  assert.deepEqual(centre(0, 0), [255, 0, 0]);
  assert.deepEqual(centre(0, 1), [0, 0, 255]);
  assert.deepEqual(centre(1, 0), [255, 255, 255], 'null cell is blank');
  assert.deepEqual(centre(1, 1), [0, 160, 0]);
  assert.deepEqual(centre(0, 2), [255, 255, 255], 'ragged row: nothing there');
  // The wide image is fitted with white margins above and below.
  const [bx, by] = g.origin(0, 1);
  assert.deepEqual(d.px(bx + 32, by + 4), [255, 255, 255]);
  assert.ok(dark(d, 0, 0, g.width, 28) > 20, 'title drawn');
  const [rx, ry] = g.origin(0, 0);
  assert.ok(dark(d, 0, ry, rx - 2, ry + 64) > 20, 'row label drawn');
  assert.ok(dark(d, rx, ry + 64, rx + 64, ry + 82) > 5, 'cell label drawn');
  assert.ok(dark(d, rx, ry - 20, rx + 64, ry) > 5, 'column label drawn');
  await assert.rejects(imageGrid([]), /no cells/);
});
