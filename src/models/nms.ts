/** A scored box before suppression, in model-input pixels. */
export interface Candidate {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  score: number;
  /** Class index into the names list. */
  cls: number;
}

export function iou(a: Candidate, b: Candidate): number {
  const w = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const h = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Greedy class-aware non-maximum suppression: a box is dropped when a better-scoring box of the
 * SAME class overlaps it by more than `iouThreshold`, so a dog and a cat guess on one animal both
 * survive (as the reference results expect). Returns at most `maxKeep` boxes, best first.
 * Quadratic per class, which is fine for the few hundred candidates a score threshold leaves.
 */
export function nms(candidates: Candidate[], iouThreshold: number, maxKeep: number): Candidate[] {
  const sorted = [...candidates].sort((a, b) => b.score - a.score);
  const kept: Candidate[] = [];
  const keptByClass = new Map<number, Candidate[]>();
  for (const c of sorted) {
    const same = keptByClass.get(c.cls);
    if (same?.some((k) => iou(k, c) > iouThreshold)) continue;
    if (same) same.push(c);
    else keptByClass.set(c.cls, [c]);
    kept.push(c);
    if (kept.length >= maxKeep) break;
  }
  return kept;
}

/**
 * The best class of one prediction row: the largest of `n` scores starting at `start`. Shared by
 * the heads whose rows are [box, (obj), cls0..clsN]; called only for rows that pass the cheap
 * objectness test, so the call costs nothing next to the scan it saves.
 */
export function bestClass(data: Float32Array, start: number, n: number): { score: number; cls: number } {
  let score = 0;
  let cls = 0;
  for (let c = 0; c < n; c++) {
    const v = data[start + c]!;
    if (v > score) {
      score = v;
      cls = c;
    }
  }
  return { score, cls };
}
