/**
 * Interleaved uint8 RGB pixels → float32 model input, normalised per channel. This runs once per
 * pixel of every model input (173k pixels for 416², 410k for 640², a 48×1700 text line), so it is
 * written as plain indexed loops with the per-channel arithmetic folded into one multiply-add.
 */

export interface TensorLayout {
  /** Channel order the model expects; the source is always RGB. */
  channels: 'rgb' | 'bgr';
  /** nchw: three planes (most ONNX exports); nhwc: interleaved (TensorFlow exports). */
  layout: 'nchw' | 'nhwc';
  /** Per channel, model order, 0–255 scale: value = (pixel − mean) / std. */
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** PaddleOCR det: ImageNet statistics (0..1 scale ×255) on the B, G, R planes, in that order. */
export const PADDLE_DET: TensorLayout = {
  channels: 'bgr',
  layout: 'nchw',
  mean: [0.485 * 255, 0.456 * 255, 0.406 * 255],
  std: [0.229 * 255, 0.224 * 255, 0.225 * 255],
};
/** PaddleOCR cls and rec: BGR scaled to −1..1. */
export const PADDLE_REC: TensorLayout = { channels: 'bgr', layout: 'nchw', mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] };

/** The item's plane size when it is larger than the image (right/bottom padding, left-aligned). */
export interface Plane {
  width: number;
  height: number;
}

/**
 * Writes one image (width × height × 3 RGB bytes) into `out` starting at element `offset`, so
 * that a batch is filled image by image into one Float32Array. With `plane` (nchw only) the image
 * sits at the top-left of a larger plane and the rest keeps what `out` holds: callers pre-fill it
 * with the padding value. Returns `out`.
 */
export function fillTensor(
  rgb: Uint8Array,
  width: number,
  height: number,
  spec: TensorLayout,
  out: Float32Array = new Float32Array(width * height * 3),
  offset = 0,
  plane: Plane = { width, height },
): Float32Array {
  const n = width * height;
  if (rgb.length < n * 3) throw new RangeError(`fillTensor: ${rgb.length} bytes for ${width}×${height}×3`);
  const planeSize = plane.width * plane.height;
  if (out.length < offset + planeSize * 3) throw new RangeError('fillTensor: output tensor too small');
  // Model channel c reads source channel src[c]; (x − mean)/std = x·a + b.
  const src = spec.channels === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const a0 = 1 / spec.std[0], a1 = 1 / spec.std[1], a2 = 1 / spec.std[2];
  const b0 = -spec.mean[0] * a0, b1 = -spec.mean[1] * a1, b2 = -spec.mean[2] * a2;
  const s0 = src[0]!, s1 = src[1]!, s2 = src[2]!;
  if (spec.layout === 'nhwc') {
    for (let j = 0, o = offset; j < n * 3; j += 3, o += 3) {
      out[o] = rgb[j + s0]! * a0 + b0;
      out[o + 1] = rgb[j + s1]! * a1 + b1;
      out[o + 2] = rgb[j + s2]! * a2 + b2;
    }
    return out;
  }
  const rows = Math.min(height, plane.height);
  const cols = Math.min(width, plane.width);
  for (let y = 0; y < rows; y++) {
    let j = y * width * 3;
    let p = offset + y * plane.width;
    const end = p + cols;
    for (; p < end; p++, j += 3) {
      out[p] = rgb[j + s0]! * a0 + b0;
      out[p + planeSize] = rgb[j + s1]! * a1 + b1;
      out[p + 2 * planeSize] = rgb[j + s2]! * a2 + b2;
    }
  }
  return out;
}
