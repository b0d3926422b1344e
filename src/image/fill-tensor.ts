/**
 * Interleaved uint8 RGB pixels → float32 model input, normalised per channel. This runs once per
 * pixel of every model input (173k pixels for 416², 410k for 640²), so it is written as plain
 * indexed loops with the per-channel arithmetic folded into one multiply-add.
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

/**
 * Writes one image (width × height × 3 RGB bytes) into `out` starting at element `offset`, so
 * that a batch is filled image by image into one Float32Array. Returns `out`.
 */
export function fillTensor(
  rgb: Uint8Array,
  width: number,
  height: number,
  spec: TensorLayout,
  out: Float32Array = new Float32Array(width * height * 3),
  offset = 0,
): Float32Array {
  const n = width * height;
  if (rgb.length < n * 3) throw new RangeError(`fillTensor: ${rgb.length} bytes for ${width}×${height}×3`);
  if (out.length < offset + n * 3) throw new RangeError('fillTensor: output tensor too small');
  // Model channel c reads source channel src[c]; (x − mean)/std = x·a + b.
  const src = spec.channels === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const a0 = 1 / spec.std[0], a1 = 1 / spec.std[1], a2 = 1 / spec.std[2];
  const b0 = -spec.mean[0] * a0, b1 = -spec.mean[1] * a1, b2 = -spec.mean[2] * a2;
  const s0 = src[0]!, s1 = src[1]!, s2 = src[2]!;
  if (spec.layout === 'nchw') {
    let p0 = offset, p1 = offset + n, p2 = offset + 2 * n;
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      out[p0++] = rgb[j + s0]! * a0 + b0;
      out[p1++] = rgb[j + s1]! * a1 + b1;
      out[p2++] = rgb[j + s2]! * a2 + b2;
    }
  } else {
    for (let j = 0, o = offset; j < n * 3; j += 3, o += 3) {
      out[o] = rgb[j + s0]! * a0 + b0;
      out[o + 1] = rgb[j + s1]! * a1 + b1;
      out[o + 2] = rgb[j + s2]! * a2 + b2;
    }
  }
  return out;
}
