// docs/bench/throughput.svg: one panel per scenario, images/s against client concurrency (log2
// x axis, since the sweep doubles), pipelines as solid lines with points, references that have no
// concurrency axis as dashed level lines. Plain SVG text, no dependency: it is a few lines and a
// label per series, and the file must render on GitHub without scripts or fonts.
import type { ChartPanel } from './lib.js';

const W = 340; // one panel
const H = 250; // plot and axes; the legend goes below, so it never covers a line
const M = { left: 52, right: 12, top: 28, bottom: 40 };
const LEGEND_ROW = 15;
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A round axis maximum at or above `v` (1, 2, 2.5 or 5 × a power of ten) and a tick count that keeps the ticks round. */
function niceMax(v: number): { max: number; ticks: number } {
  if (!(v > 0)) return { max: 1, ticks: 4 };
  const p = 10 ** Math.floor(Math.log10(v));
  const m = [1, 2, 2.5, 5, 10].find((m) => m * p >= v)!;
  return { max: m * p, ticks: m === 2 ? 4 : 5 };
}

const num = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(v % 1000 ? 1 : 0)}k` : String(Number(v.toPrecision(3))));

function panel(p: ChartPanel, ox: number): string {
  // Series of one group (e.g. a payload size) share a colour: the pipeline's line and its reference.
  const groups = [...new Set(p.series.map((s) => s.group ?? s.name))];
  const colourOf = (s: ChartPanel['series'][number]) => COLOURS[groups.indexOf(s.group ?? s.name) % COLOURS.length];
  const xs = [...new Set(p.series.flatMap((s) => (s.points.length > 1 ? s.points.map(([x]) => x) : [])))].sort((a, b) => a - b);
  const xMin = Math.min(...xs, 1);
  const xMax = Math.max(...xs, 2);
  const { max: yMax, ticks } = niceMax(Math.max(...p.series.flatMap((s) => s.points.map(([, y]) => y))) * 1.05);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (v: number) => ox + M.left + (pw * Math.log2(v / xMin)) / Math.log2(xMax / xMin);
  const y = (v: number) => M.top + ph - (ph * v) / yMax;
  const out: string[] = [];
  out.push(`<text x="${ox + W / 2}" y="16" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  for (let i = 0; i <= ticks; i++) {
    const v = (yMax * i) / ticks;
    out.push(`<line x1="${ox + M.left}" x2="${ox + W - M.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${ox + M.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${num(v)}</text>`);
  }
  for (const v of xs) out.push(`<text x="${x(v).toFixed(1)}" y="${M.top + ph + 16}" text-anchor="middle">${v}</text>`);
  out.push(`<line x1="${ox + M.left}" x2="${ox + W - M.right}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#888"/>`);
  out.push(`<text x="${ox + M.left + pw / 2}" y="${H - 6}" text-anchor="middle" fill="#555">client concurrency</text>`);
  out.push(`<text transform="translate(${ox + 13} ${M.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#555">images/s</text>`);
  p.series.forEach((s, i) => {
    const colour = colourOf(s);
    if (s.points.length === 1) {
      const yy = y(s.points[0]![1]).toFixed(1);
      out.push(`<line x1="${ox + M.left}" x2="${ox + W - M.right}" y1="${yy}" y2="${yy}" stroke="${colour}" stroke-width="2" stroke-dasharray="6 4"/>`);
    } else {
      const pts = s.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`);
      out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.join(' ')}"/>`);
      for (const pt of pts) out.push(`<circle cx="${pt.split(',')[0]}" cy="${pt.split(',')[1]}" r="2.5" fill="${colour}"/>`);
    }
    // Legend under the axis title, one line per series.
    const ly = H + 12 + i * LEGEND_ROW;
    const dash = s.points.length === 1 ? ' stroke-dasharray="6 4"' : '';
    out.push(`<line x1="${ox + M.left + 8}" x2="${ox + M.left + 26}" y1="${ly - 4}" y2="${ly - 4}" stroke="${colour}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${ox + M.left + 30}" y="${ly}">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

/** The whole figure: panels side by side, in the order given. */
export function throughputSvg(panels: ChartPanel[], caption: string): string {
  const width = W * Math.max(1, panels.length);
  const height = H + Math.max(...panels.map((p) => p.series.length), 1) * LEGEND_ROW + 30;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...panels.map((p, i) => panel(p, i * W)),
    `<text x="8" y="${height - 6}" fill="#777" font-size="10">${esc(caption)}</text>`,
    `</svg>`,
    '',
  ].join('\n');
}
