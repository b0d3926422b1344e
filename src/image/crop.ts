import type { Point } from '../protocol/types.js';
import type { RgbImage } from './decode.js';
import type { CvMat, OpenCv } from './opencv.js';

/**
 * How a text region is cut out: PaddleOCR's get_rotate_crop_image. Width is the longer of the
 * top and bottom edges, height the longer of the side edges; a crop that comes out much taller
 * than wide (h/w ≥ 1.5) is a vertical line and is turned 90° counter-clockwise (np.rot90), which
 * is the same as starting the corner order one corner later.
 */
export function lineCorners(polygon: Point[]): { corners: Point[]; width: number; height: number } {
  const [tl, tr, br, bl] = polygon as [Point, Point, Point, Point];
  const width = Math.max(1, Math.trunc(Math.max(dist(tl, tr), dist(bl, br))));
  const height = Math.max(1, Math.trunc(Math.max(dist(tl, bl), dist(tr, br))));
  if (height / width >= 1.5) return { corners: [tr, br, bl, tl], width: height, height: width };
  return { corners: [tl, tr, br, bl], width, height };
}

/** The image as an OpenCV matrix (one copy); delete() it when done. */
export function toMat(cv: OpenCv, img: RgbImage): CvMat {
  const mat = new cv.Mat(img.height, img.width, cv.CV_8UC3);
  mat.data.set(img.data);
  return mat;
}

/**
 * Perspective-warps the quadrilateral `corners` (destination order tl, tr, br, bl) of `src` to an
 * upright `width × height` RGB image. Cubic interpolation and replicated borders, as PaddleOCR:
 * regions touching the image edge then do not get black bars that read as characters.
 */
export function warpQuad(cv: OpenCv, src: CvMat, corners: Point[], width: number, height: number): RgbImage {
  const from = cv.matFromArray(4, 1, cv.CV_32FC2, corners.flat());
  const to = cv.matFromArray(4, 1, cv.CV_32FC2, [0, 0, width, 0, width, height, 0, height]);
  const m = cv.getPerspectiveTransform(from, to);
  const out = new cv.Mat();
  try {
    cv.warpPerspective(src, out, m, new cv.Size(width, height), cv.INTER_CUBIC, cv.BORDER_REPLICATE, [0, 0, 0, 0]);
    return { data: Buffer.from(out.data), width, height, channels: 3 };
  } finally {
    from.delete();
    to.delete();
    m.delete();
    out.delete();
  }
}

/**
 * Scales an RGB image to `height` rows keeping its aspect ratio (at least 1 column). Area
 * averaging when shrinking keeps thin strokes of large text from aliasing away; bilinear when
 * enlarging small text.
 */
export function resizeToHeight(cv: OpenCv, img: RgbImage, height: number): RgbImage {
  const width = Math.max(1, Math.ceil((img.width * height) / img.height));
  if (width === img.width && height === img.height) return img;
  const src = toMat(cv, img);
  const out = new cv.Mat();
  try {
    const shrink = height < img.height;
    cv.resize(src, out, new cv.Size(width, height), 0, 0, shrink ? cv.INTER_AREA : cv.INTER_LINEAR);
    return { data: Buffer.from(out.data), width, height, channels: 3 };
  } finally {
    src.delete();
    out.delete();
  }
}

/** The image turned 180° (a new buffer): pixel i becomes pixel n−1−i. */
export function rotate180(img: RgbImage): RgbImage {
  const src = img.data;
  const out = Buffer.allocUnsafe(src.length);
  for (let i = 0, j = src.length - 3; i < src.length; i += 3, j -= 3) {
    out[j] = src[i]!;
    out[j + 1] = src[i + 1]!;
    out[j + 2] = src[i + 2]!;
  }
  return { data: out, width: img.width, height: img.height, channels: 3 };
}

/** Columns [x0, x0 + width) of an image (a new buffer). */
export function cropColumns(img: RgbImage, x0: number, width: number): RgbImage {
  const out = Buffer.allocUnsafe(width * img.height * 3);
  for (let y = 0; y < img.height; y++) {
    const s = (y * img.width + x0) * 3;
    img.data.copy(out, y * width * 3, s, s + width * 3);
  }
  return { data: out, width, height: img.height, channels: 3 };
}

function dist(a: Point, b: Point): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}
