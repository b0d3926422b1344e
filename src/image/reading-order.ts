import type { Box, Detection } from '../protocol/types.js';

/**
 * Top-to-bottom lines, left-to-right within a line. Two regions share a line when each one's
 * vertical centre lies inside the other's vertical extent (checked against every region already
 * on the line), so the few pixels of slope of a tilted line do not split it, while stacked lines
 * (whose centres are a line apart) stay apart.
 */
export function readingOrder<T extends { box: Box }>(regions: readonly T[]): T[] {
  if (regions.length < 2) return [...regions];
  const byCentre = [...regions].sort((a, b) => cy(a) - cy(b));
  const lines: T[][] = [];
  for (const r of byCentre) {
    const line = lines[lines.length - 1];
    const fits = line?.every((o) => cy(r) >= o.box[1] && cy(r) <= o.box[3] && cy(o) >= r.box[1] && cy(o) <= r.box[3]);
    if (line && fits) line.push(r);
    else lines.push([r]);
  }
  return lines.flatMap((line) => line.sort((a, b) => a.box[0] - b.box[0]));
}

function cy(r: { box: Box }): number {
  return (r.box[1] + r.box[3]) / 2;
}

/** The order of a reply's detections: text in reading order, anything else by score, best first. */
export function replyOrder(detections: readonly Detection[]): Detection[] {
  const allText = detections.every((d) => d.text !== undefined || d.polygon !== undefined);
  return allText ? readingOrder(detections) : [...detections].sort((a, b) => b.score - a.score);
}
