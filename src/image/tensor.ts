/** Which input channel goes to tensor plane 0, 1, 2. */
export type ChannelOrder = 'rgb' | 'bgr';

/** Per-plane normalisation `(x/255 − mean) / std`, given in tensor plane order. */
export interface Normalisation {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** PaddleOCR det: ImageNet statistics, applied to the B, G, R planes in that order. */
export const IMAGENET_BGR: Normalisation = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
/** PaddleOCR cls and rec: scale to −1..1. */
export const HALF_HALF: Normalisation = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

/**
 * Writes an interleaved uint8 RGB image into one NCHW float32 item of `dst` (starting at
 * `offset`, planes of `planeWidth × planeHeight`), left-aligned: columns/rows past the image keep
 * whatever `dst` holds (callers pre-fill it with the padding value). This runs for every pixel
 * of every frame, so it is one flat loop with the affine factors hoisted out.
 */
export function fillNchw(
  dst: Float32Array,
  offset: number,
  src: Uint8Array,
  width: number,
  height: number,
  planeWidth: number,
  planeHeight: number,
  order: ChannelOrder,
  norm: Normalisation,
): void {
  const plane = planeWidth * planeHeight;
  // x/255 − m)/s  ==  x·a + b
  const a0 = 1 / (255 * norm.std[0]);
  const a1 = 1 / (255 * norm.std[1]);
  const a2 = 1 / (255 * norm.std[2]);
  const b0 = -norm.mean[0] / norm.std[0];
  const b1 = -norm.mean[1] / norm.std[1];
  const b2 = -norm.mean[2] / norm.std[2];
  // Source channel offset feeding each plane.
  const c0 = order === 'bgr' ? 2 : 0;
  const c2 = order === 'bgr' ? 0 : 2;
  const rows = Math.min(height, planeHeight);
  const cols = Math.min(width, planeWidth);
  for (let y = 0; y < rows; y++) {
    let s = y * width * 3;
    let d = offset + y * planeWidth;
    const end = d + cols;
    for (; d < end; d++, s += 3) {
      dst[d] = src[s + c0]! * a0 + b0;
      dst[d + plane] = src[s + 1]! * a1 + b1;
      dst[d + 2 * plane] = src[s + c2]! * a2 + b2;
    }
  }
}
