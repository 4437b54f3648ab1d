// Small SVG charts drawn by reno itself (no plotting library): a line chart with axes, ticks and a legend.
export interface Series {
  name: string;
  values: number[];
  color?: string;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Round tick values for [lo, hi] (about n of them). */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) {
    const d = Math.abs(lo) * 0.1 || 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const fmtTick = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4))));

/** A line chart of several series against their index (x = step). */
export function lineChart(
  series: Series[],
  o: { title: string; xLabel?: string; yLabel?: string; width?: number; height?: number; xValues?: number[] },
): string {
  const W = o.width ?? 420;
  const H = o.height ?? 260;
  const m = { l: 58, r: 12, t: 28, b: 44 + 16 * Math.ceil(series.length / 3) };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const all = series.flatMap((s) => s.values.filter(Number.isFinite));
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const xs = o.xValues ?? Array.from({ length: n }, (_, i) => i);
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (!all.length) [lo, hi] = [0, 1];
  const yt = niceTicks(lo, hi);
  const y0 = Math.min(lo, yt[0] ?? lo);
  const y1 = Math.max(hi, yt[yt.length - 1] ?? hi);
  const xt = niceTicks(xs[0], xs[xs.length - 1], Math.min(6, n)).filter((v) => Number.isInteger(v) || !o.xValues);
  const X = (v: number) => m.l + (xs.length > 1 ? ((v - xs[0]) / (xs[xs.length - 1] - xs[0] || 1)) * pw : pw / 2);
  const Y = (v: number) => m.t + ph - ((v - y0) / (y1 - y0 || 1)) * ph;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(o.title)}">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(
    `<text x="${W / 2}" y="16" text-anchor="middle" font-family="sans-serif" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`,
  );
  for (const v of yt) {
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.l - 6}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end" font-family="sans-serif" font-size="10">${fmtTick(v)}</text>`);
  }
  for (const v of xt)
    parts.push(`<text x="${X(v).toFixed(1)}" y="${m.t + ph + 14}" text-anchor="middle" font-family="sans-serif" font-size="10">${fmtTick(v)}</text>`);
  parts.push(
    `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="black"/><line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="black"/>`,
  );
  if (o.xLabel)
    parts.push(
      `<text x="${m.l + pw / 2}" y="${m.t + ph + 30}" text-anchor="middle" font-family="sans-serif" font-size="11">${escapeXml(o.xLabel)}</text>`,
    );
  if (o.yLabel)
    parts.push(
      `<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" font-family="sans-serif" font-size="11">${escapeXml(o.yLabel)}</text>`,
    );
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const pts = s.values.map((v, j) => (Number.isFinite(v) ? `${X(xs[j]).toFixed(1)},${Y(v).toFixed(1)}` : null)).filter(Boolean);
    if (pts.length > 1)
      parts.push(
        `<polyline class="series" data-name="${escapeXml(s.name)}" fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`,
      );
    else if (pts.length === 1) {
      const [cx, cy] = pts[0]!.split(',');
      parts.push(`<circle class="series" data-name="${escapeXml(s.name)}" cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`);
    }
    const lx = m.l + (i % 3) * (pw / 3);
    const ly = m.t + ph + 36 + 16 * Math.floor(i / 3);
    parts.push(
      `<rect x="${lx}" y="${ly - 8}" width="12" height="3" fill="${color}"/><text x="${lx + 16}" y="${ly - 3}" font-family="sans-serif" font-size="10">${escapeXml(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
