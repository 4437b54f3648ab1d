// report.html of a run folder: the initial and best images side by side, the weighted loss and one score curve per
// reward as inline SVG (src/report/charts.ts), the per-step table and the resolved configuration. Per reward it
// shows scores (higher is better, as `reno score` prints them); the weighted sum the loop minimises is labelled a loss.
import YAML from 'yaml';
import type { StepRecord } from '../optimize/loop.js';
import { lineChartSvg } from './charts.js';

/** Text for HTML / XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface RunReportData {
  title: string;
  prompt: string;
  images: { src: string; caption: string }[];
  records: StepRecord[];
  weights: Record<string, number>;
  config: unknown;
  notes: string[];
}

export const PAGE_STYLE = `body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
figure{display:inline-block;margin:0 16px 16px 0;text-align:center}figure img{width:320px;height:auto;image-rendering:pixelated;border:1px solid #ccc}
.charts svg{margin:0 12px 12px 0;border:1px solid #eee}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
pre{background:#f6f6f6;padding:8px;font-size:12px;overflow:auto}.note{color:#a33}`;

export function page(title: string, body: string): string {
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title><style>${PAGE_STYLE}</style></head>\n<body>\n${body}\n</body></html>\n`;
}

export async function runReport(d: RunReportData): Promise<string> {
  const names = Object.keys(d.records[0]?.rewards ?? {});
  const steps = d.records.map((r) => r.step);
  const chart = (title: string, name: string, values: number[], yLabel: string) =>
    lineChartSvg({ title, series: [{ name, values }], x: steps, xLabel: 'step', yLabel, legend: 'bottom' });
  const charts = await Promise.all([
    chart(
      'weighted reward loss (lower is better)',
      'weighted reward loss',
      d.records.map((r) => r.total),
      'loss',
    ),
    ...names.map((n) =>
      chart(
        `${n} score (weight ${d.weights[n] ?? 0}; higher is better)`,
        n,
        d.records.map((r) => r.scores[n]),
        'score',
      ),
    ),
    chart(
      'noise norm',
      '||z||',
      d.records.map((r) => r.norm),
      '||z||',
    ),
  ]);
  const head = ['step', ...names.map((n) => `${n} score`), 'loss (weighted)', 'reg', '||z||', 'grad norm', 's'];
  const rows = d.records.map(
    (r) =>
      `<tr${r.best ? ' style="background:#eef8ee"' : ''}>` +
      [
        r.step,
        ...names.map((n) => r.scores[n].toFixed(4)),
        r.total.toFixed(4),
        r.reg.toFixed(2),
        r.norm.toFixed(2),
        r.grad_norm === null ? '' : r.grad_norm.toExponential(2),
        r.seconds.toFixed(2),
      ]
        .map((v) => `<td>${v}</td>`)
        .join('') +
      '</tr>',
  );
  const body = [
    `<h1>${escapeXml(d.title)}</h1>`,
    `<p>Prompt: <b>${escapeXml(d.prompt)}</b></p>`,
    ...d.notes.map((n) => `<p class="note">${escapeXml(n)}</p>`),
    `<div class="images">${d.images.map((i) => `<figure><img src="${escapeXml(i.src)}" alt="${escapeXml(i.caption)}"><figcaption>${escapeXml(i.caption)}</figcaption></figure>`).join('')}</div>`,
    `<h2>Weighted loss and reward scores per step</h2><div class="charts">${charts.join('\n')}</div>`,
    `<h2>Steps</h2><table><tr>${head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr>${rows.join('\n')}</table>`,
    `<h2>Configuration</h2><pre>${escapeXml(YAML.stringify(d.config))}</pre>`,
  ];
  return page(d.title, body.join('\n'));
}
