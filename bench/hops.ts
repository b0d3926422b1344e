// Splits each request's round trip into hops, the way Triton's perf_analyzer splits a request
// into client send/receive, queue and compute: so a slow hop is visible instead of averaged away.
// The stages' part comes from the reply's timings_ms (docs/protocol.md); the client's is its own
// round trip minus `total`.
import { percentile, table, type HopSample } from './lib.js';

/** The parts, in the order a request meets them. Each is computed per reply, then summarised. */
const PARTS: [string, (h: HopSample) => number][] = [
  // Client send + receive, the ingest's reply forwarding and the sink → ingest hop: `total` stops at the sink.
  ['client send/recv + return hop', (h) => h.rtt - h.timings.total!],
  ['detect wait', (h) => h.timings.detect_wait ?? 0],
  ['detect compute', (h) => h.timings.detect ?? 0],
  ['classify wait', (h) => h.timings.classify_wait ?? 0],
  ['classify compute', (h) => h.timings.classify ?? 0],
  ['sink wait', (h) => h.timings.sink_wait ?? 0],
  ['rest (ingest accept → send, sink work)', (h) => h.timings.total! - stageSum(h)],
];

function stageSum(h: HopSample): number {
  const t = h.timings;
  return (t.detect_wait ?? 0) + (t.detect ?? 0) + (t.classify_wait ?? 0) + (t.classify ?? 0) + (t.sink_wait ?? 0);
}

export interface HopSplit {
  concurrency: number;
  replies: number;
  rows: { part: string; mean: number; p50: number }[];
  /** Mean client round trip, and the sum of the parts' means (equal up to float error: a check on the arithmetic). */
  rttMean: number;
  partsMean: number;
  /** Replies whose parts do not fit: stage sum above `total` by more than `total`'s 1 ms granularity, or `total` above the round trip. */
  misfits: number;
}

export function splitHops(concurrency: number, hops: HopSample[]): HopSplit {
  const usable = hops.filter((h) => typeof h.timings.total === 'number');
  const rows = PARTS.map(([part, f]) => {
    const v = usable.map(f);
    const sorted = [...v].sort((a, b) => a - b);
    return { part, mean: v.reduce((s, x) => s + x, 0) / Math.max(1, v.length), p50: percentile(sorted, 50) };
  });
  const rttMean = usable.reduce((s, h) => s + h.rtt, 0) / Math.max(1, usable.length);
  const partsMean = rows.reduce((s, r) => s + r.mean, 0);
  // `total` is whole milliseconds (Date.now), the parts are fractional: allow 1 ms either way.
  const misfits = usable.filter((h) => stageSum(h) > h.timings.total! + 1 || h.timings.total! > h.rtt + 1).length;
  return { concurrency, replies: usable.length, rows, rttMean, partsMean, misfits };
}

/** One table, a column pair (mean, p50) per concurrency, and a line saying whether the parts add up. */
export function hopTable(splits: HopSplit[]): string {
  const headers = ['part (ms)', ...splits.flatMap((s) => [`c=${s.concurrency} mean`, `c=${s.concurrency} p50`])];
  const rows = splits[0]!.rows.map((r, i) => [r.part, ...splits.flatMap((s) => [s.rows[i]!.mean, s.rows[i]!.p50])]);
  rows.push(['**client round trip**', ...splits.flatMap((s) => [s.rttMean, '']) as (string | number)[]]);
  const sums = splits.map((s) => `c=${s.concurrency}: ${s.partsMean.toFixed(2)} of ${s.rttMean.toFixed(2)} ms over ${s.replies} replies`).join('; ');
  const misfits = splits.map((s) => `${s.misfits} of ${s.replies}`).join(' and ');
  const checks = `the parts' means add up to the mean round trip (${sums}); replies whose stage times exceed \`total\` (or \`total\` the round trip) by over 1 ms: ${misfits}`;
  return `${table(headers, rows)}\n\nCheck: ${checks}. (\`total\` is whole milliseconds, so "rest" can dip just below 0.)`;
}
