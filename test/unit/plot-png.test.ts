// PNG figures: sizes, decodable PNGs, the series / cell / group counts in the SVG, that text renders (fonts through
// fontconfig), and the image grid's layout (cells where expected, labels drawn).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import {
  heatmapPng,
  heatmapSvg,
  imageGrid,
  imageGridSvg,
  linePlotPng,
  linePlotSvg,
  nRefPlotSvg,
  scatterPng,
  scatterSvg,
  svgToPng,
  viridis,
} from '../../src/report/plot-png.js';

async function decode(png: Buffer) {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, info, px: (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)] };
}

/** Dark pixels in a region (text, lines). */
function dark(d: Awaited<ReturnType<typeof decode>>, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (d.px(x, y).every((v) => v < 128)) n++;
  return n;
}

test('text renders in SVG rasterised by sharp (a font is found)', async () => {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><rect width="200" height="40" fill="white"/><text x="10" y="28" font-family="DejaVu Sans, sans-serif" font-size="20">Accuracy 61.68</text></svg>`;
  const d = await decode(await svgToPng(svg));
  assert.equal(d.info.width, 200);
  assert.ok(dark(d, 0, 0, 200, 40) > 100, 'glyph pixels drawn');
});

test('line plot: size, one group per series, dashed unseen lines, legend text drawn', async () => {
  const sweep = {
    nRef: [1, 2, 4, 8],
    series: [
      { model: 'Ours', all: [0.58, 0.59, 0.6, 0.62], seen: [0.57, 0.59, 0.6, 0.61], unseen: [0.56, 0.58, 0.61, 0.62] },
      { model: 'ViPer', all: [0.5, 0.53, 0.55, 0.57], seen: [0.55, 0.56, 0.57, 0.58], unseen: [0.5, 0.52, 0.55, 0.57] },
    ],
  };
  const svg = nRefPlotSvg(sweep);
  assert.equal(svg.match(/class="series"/g)?.length, 4);
  assert.equal(svg.match(/stroke-dasharray="6 4"/g)?.length, 2);
  assert.match(svg, /data-name="Ours unseen"/);
  assert.equal(nRefPlotSvg(sweep, { groups: 'all' }).match(/class="series"/g)?.length, 2);
  const opts = { title: 'acc', x: [1, 2, 4, 8], series: [{ name: 'a', values: [1, 2, NaN, 4] }], width: 400, height: 300 };
  assert.equal(linePlotSvg(opts).match(/<circle/g)?.length, 3, 'no dot for a missing value');
  const d = await decode(await linePlotPng(opts));
  assert.deepEqual([d.info.width, d.info.height], [400, 300]);
  assert.deepEqual(d.px(2, 2), [255, 255, 255]);
  assert.ok(dark(d, 0, 0, 400, 30) > 20, 'title drawn');
});

test('heat map: one rect per cell, colour bar, PNG colours follow the values', async () => {
  const values = Array.from({ length: 12 }, (_, i) => Array.from({ length: 5 }, (_, j) => i * 5 + j));
  const o = { title: 'attention', values, xLabel: 'prototype', yLabel: 'image token', plotWidth: 250, plotHeight: 240 };
  const svg = heatmapSvg(o);
  assert.match(svg, /data-rows="12" data-cols="5"/);
  const cells = svg.slice(svg.indexOf('class="cells"'), svg.indexOf('</g>'));
  assert.equal(cells.match(/<rect/g)?.length, 60);
  assert.equal(viridis(0), '#440154');
  assert.equal(viridis(1), '#fde725');
  const png = await heatmapPng(o);
  const d = await decode(png);
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  // First cell (min) is dark purple, last cell (max) yellow: find them from the SVG geometry.
  const rect = (k: number) =>
    cells
      .match(/<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/g)!
      [k].match(/[\d.]+/g)!
      .map(Number);
  const [x0, y0, w, h] = rect(0);
  const [x1, y1] = rect(59);
  const a = d.px(Math.floor(x0 + w / 2), Math.floor(y0 + h / 2));
  const b = d.px(Math.floor(x1 + w / 2), Math.floor(y1 + h / 2));
  assert.deepEqual(a, [0x44, 0x01, 0x54]);
  assert.deepEqual(b, [0xfd, 0xe7, 0x25]);
  // Many rows: labels are thinned.
  const big = heatmapSvg({ title: 't', values: Array.from({ length: 300 }, () => [0, 1]) });
  assert.ok((big.match(/text-anchor="end"/g)?.length ?? 0) <= 31);
});

test('scatter: one group per label with its points, legend', async () => {
  const points = ['a', 'b', 'c'].flatMap((g, k) => Array.from({ length: 7 + k }, (_, i) => ({ x: k * 10 + i, y: i % 3, group: g })));
  const svg = scatterSvg({ title: 't-SNE', points });
  assert.equal(svg.match(/class="group"/g)?.length, 3);
  const groupC = svg.slice(svg.indexOf('data-name="c"'));
  assert.equal(groupC.slice(0, groupC.indexOf('</g>')).match(/<circle/g)?.length, 9);
  const d = await decode(await scatterPng({ title: 't-SNE', points, width: 300, height: 240 }));
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
  const png = await imageGrid(cells, o);
  const d = await decode(png);
  const g = imageGridSvg(2, 3, cells, o);
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
  assert.equal(g.svg.match(/class="cell-label"/g)?.length, 2);
  assert.ok(dark(d, 0, 0, g.width, 28) > 20, 'title drawn');
  const [rx, ry] = g.origin(0, 0);
  assert.ok(dark(d, 0, ry, rx - 2, ry + 64) > 20, 'row label drawn');
  assert.ok(dark(d, rx, ry + 64, rx + 64, ry + 82) > 5, 'cell label drawn');
  await assert.rejects(imageGrid([]), /no cells/);
});
