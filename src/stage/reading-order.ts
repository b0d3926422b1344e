import type { Detection } from '../protocol/types.js';

/**
 * Text regions top-to-bottom, then left-to-right within a line; anything else by score.
 * Two regions share a line when their vertical centres fall inside each other's extent, so a
 * slightly tilted line is not split by a few pixels of slope.
 */
export function readingOrder(detections: Detection[]): Detection[] {
  const text = detections.filter((d) => d.text !== undefined || d.polygon !== undefined);
  if (text.length !== detections.length) return [...detections].sort((a, b) => b.score - a.score);
  const byTop = [...text].sort((a, b) => centreY(a) - centreY(b));
  const lines: Detection[][] = [];
  for (const d of byTop) {
    const line = lines[lines.length - 1];
    const head = line?.[0];
    if (head && centreY(d) <= head.box[3] && centreY(head) >= d.box[1]) line!.push(d);
    else lines.push([d]);
  }
  return lines.flatMap((line) => line.sort((a, b) => a.box[0] - b.box[0]));
}

function centreY(d: Detection): number {
  return (d.box[1] + d.box[3]) / 2;
}
