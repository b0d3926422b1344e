import { createRequire } from 'node:module';
import type { OpenCv, CvMat } from '../image/opencv.js';
import type { Box, Point } from '../protocol/types.js';

/** DB (Differentiable Binarization) post-processing settings, PaddleOCR's names in brackets. */
export interface DbParams {
  /** Probability map threshold [thresh]. */
  threshold: number;
  /** Mean probability inside a box needed to keep it [box_thresh]. */
  boxThreshold: number;
  /** How far a box grows past its shrunk core [unclip_ratio]. */
  unclipRatio: number;
  /** Shorter side, in map pixels, below which a box is dropped [min_size]. */
  minSize: number;
  /** Boxes kept at most (the most confident ones). */
  maxRegions: number;
}

/** The probability map the det model returned, and the size of the image it stands for. */
export interface ProbMap {
  data: Float32Array;
  width: number;
  height: number;
  srcWidth: number;
  srcHeight: number;
}

export interface DbBox {
  polygon: Point[];
  box: Box;
  score: number;
}

interface Corner {
  x: number;
  y: number;
}

/**
 * Turns a DB probability map into text boxes the way PaddleOCR's DBPostProcess does ("fast"
 * score mode): binarise, trace contours, take each contour's minimum-area rectangle, score it by
 * the mean probability inside, grow it by the unclip distance (the model predicts a shrunk core
 * of each line), take the rectangle of the grown polygon, and scale it to the original image.
 */
export function dbPostprocess(cv: OpenCv, map: ProbMap, p: DbParams): DbBox[] {
  const { width: mw, height: mh, data } = map;
  const bitmap = new cv.Mat(mh, mw, cv.CV_8UC1);
  const probMat = new cv.Mat(mh, mw, cv.CV_32FC1);
  const contours = new cv.MatVector();
  const hierarchy = new cv.Mat();
  const found: DbBox[] = [];
  try {
    const bits = bitmap.data;
    for (let i = 0; i < bits.length; i++) bits[i] = data[i]! > p.threshold ? 255 : 0;
    probMat.data32F.set(data);
    cv.findContours(bitmap, contours, hierarchy, cv.RETR_LIST, cv.CHAIN_APPROX_SIMPLE);

    const sx = map.srcWidth / mw;
    const sy = map.srcHeight / mh;
    for (let i = 0; i < contours.size(); i++) {
      const contour = contours.get(i);
      let core: { corners: Corner[]; shortSide: number };
      try {
        core = miniBox(cv, contour);
      } finally {
        contour.delete();
      }
      if (core.shortSide < p.minSize) continue;
      const score = meanInside(cv, probMat, core.corners);
      if (score < p.boxThreshold) continue;
      const grown = unclip(core.corners, p.unclipRatio);
      if (grown.length < 3) continue;
      const grownMat = cv.matFromArray(grown.length / 2, 1, cv.CV_32SC2, grown);
      let outer: { corners: Corner[]; shortSide: number };
      try {
        outer = miniBox(cv, grownMat);
      } finally {
        grownMat.delete();
      }
      if (outer.shortSide < p.minSize + 2) continue;

      const polygon = outer.corners.map(
        (c): Point => [clamp(Math.round(c.x * sx), 0, map.srcWidth), clamp(Math.round(c.y * sy), 0, map.srcHeight)],
      );
      // Clipping to the image can squash a box at the border to a sliver; such slivers hold no text.
      if (dist(polygon[0]!, polygon[1]!) <= 3 || dist(polygon[0]!, polygon[3]!) <= 3) continue;
      found.push({ polygon, box: bounds(polygon), score });
    }
  } finally {
    bitmap.delete();
    probMat.delete();
    contours.delete();
    hierarchy.delete();
  }
  if (found.length > p.maxRegions) found.sort((a, b) => b.score - a.score).length = p.maxRegions;
  return found;
}

/** Minimum-area rectangle of a point set, corners clockwise from the top-left (PaddleOCR get_mini_boxes). */
function miniBox(cv: OpenCv, points: CvMat): { corners: Corner[]; shortSide: number } {
  const rect = cv.minAreaRect(points);
  const pts = cv.RotatedRect.points(rect).sort((a, b) => a.x - b.x);
  const [l0, l1, r0, r1] = pts as [Corner, Corner, Corner, Corner];
  const [tl, bl] = l1.y > l0.y ? [l0, l1] : [l1, l0];
  const [tr, br] = r1.y > r0.y ? [r0, r1] : [r1, r0];
  return { corners: [tl, tr, br, bl], shortSide: Math.min(rect.size.width, rect.size.height) };
}

/** Mean probability inside a quadrilateral (PaddleOCR box_score_fast). */
function meanInside(cv: OpenCv, prob: CvMat, corners: Corner[]): number {
  const xs = corners.map((c) => c.x);
  const ys = corners.map((c) => c.y);
  const x0 = clamp(Math.floor(Math.min(...xs)), 0, prob.cols - 1);
  const x1 = clamp(Math.ceil(Math.max(...xs)), 0, prob.cols - 1);
  const y0 = clamp(Math.floor(Math.min(...ys)), 0, prob.rows - 1);
  const y1 = clamp(Math.ceil(Math.max(...ys)), 0, prob.rows - 1);
  const w = x1 - x0 + 1;
  const h = y1 - y0 + 1;
  const mask = cv.Mat.zeros(h, w, cv.CV_8UC1);
  const poly = cv.matFromArray(4, 1, cv.CV_32SC2, corners.flatMap((c) => [Math.round(c.x - x0), Math.round(c.y - y0)]));
  const polys = new cv.MatVector();
  const roi = prob.roi(new cv.Rect(x0, y0, w, h));
  try {
    polys.push_back(poly);
    cv.fillPoly(mask, polys, [1, 1, 1, 1]);
    return cv.mean(roi, mask)[0]!;
  } finally {
    roi.delete();
    polys.delete();
    poly.delete();
    mask.delete();
  }
}

interface IntPoint {
  X: number;
  Y: number;
}

interface ClipperOffsetLike {
  AddPath(path: IntPoint[], join: number, end: number): void;
  Execute(solution: IntPoint[][], delta: number): void;
}

interface ClipperLib {
  ClipperOffset: new () => ClipperOffsetLike;
  JoinType: { jtRound: number };
  EndType: { etClosedPolygon: number };
}

// js-clipper (the JS port of Angus Johnson's Clipper, what pyclipper wraps) ships no typings.
const lib = createRequire(import.meta.url)('js-clipper') as ClipperLib;

/** Grows a polygon by area·ratio/perimeter with round joins (pyclipper in PaddleOCR); flat x,y list. */
function unclip(corners: Corner[], ratio: number): number[] {
  let area = 0;
  let perimeter = 0;
  for (let i = 0; i < corners.length; i++) {
    const a = corners[i]!;
    const b = corners[(i + 1) % corners.length]!;
    area += a.x * b.y - b.x * a.y;
    perimeter += Math.hypot(b.x - a.x, b.y - a.y);
  }
  if (perimeter === 0) return [];
  const distance = (Math.abs(area) / 2) * ratio / perimeter;
  const offset = new lib.ClipperOffset();
  // Clipper works on integer coordinates, as pyclipper does.
  offset.AddPath(corners.map((c) => ({ X: Math.round(c.x), Y: Math.round(c.y) })), lib.JoinType.jtRound, lib.EndType.etClosedPolygon);
  const solution: IntPoint[][] = [];
  offset.Execute(solution, distance);
  const first = solution[0];
  return first ? first.flatMap((pt) => [pt.X, pt.Y]) : [];
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

function dist(a: Point, b: Point): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

function bounds(polygon: Point[]): Box {
  const xs = polygon.map((p) => p[0]);
  const ys = polygon.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}
