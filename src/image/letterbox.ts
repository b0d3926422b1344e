import sharp, { type OutputInfo, type Sharp } from 'sharp';
import { BadImageError } from '../protocol/errors.js';
import { readImageHeader, widenToRgb, type RgbImage } from './decode.js';

/**
 * Where the resized image sits on the model's canvas. Each detector family was trained with one:
 * YOLOX top-left, Ultralytics and NanoDet centred, the RFB face detector stretched (no padding).
 */
export type Fit = 'top-left' | 'centre' | 'stretch';

/** The model's input canvas and how an image is fitted into it. */
export interface InputGeometry {
  width: number;
  height: number;
  fit: Fit;
  /** Grey level of the padding, 0–255. */
  pad: number;
  /** How the scaled size is rounded: YOLOX truncates (`int()`), Ultralytics rounds. */
  rounding: 'floor' | 'round';
}

/** An image fitted to a model input, with what is needed to map boxes back. */
export interface Letterboxed {
  /** Interleaved RGB, exactly width × height × 3 bytes. */
  data: Buffer;
  width: number;
  height: number;
  /** Input pixels per original pixel, per axis. */
  scaleX: number;
  scaleY: number;
  /** Left and top padding, input pixels. */
  padX: number;
  padY: number;
  /** Size of the original image after EXIF rotation. */
  original: { width: number; height: number };
}

export interface Placement {
  /** Size of the resized image inside the canvas. */
  width: number;
  height: number;
  left: number;
  top: number;
}

/** Where an image of srcW × srcH lands on the canvas (pure arithmetic, shared with tests). */
export function placement(srcW: number, srcH: number, g: InputGeometry): Placement {
  if (g.fit === 'stretch') return { width: g.width, height: g.height, left: 0, top: 0 };
  const r = Math.min(g.width / srcW, g.height / srcH);
  const rnd = g.rounding === 'floor' ? Math.floor : Math.round;
  const width = Math.min(g.width, Math.max(1, rnd(srcW * r)));
  const height = Math.min(g.height, Math.max(1, rnd(srcH * r)));
  if (g.fit === 'top-left') return { width, height, left: 0, top: 0 };
  // Ultralytics' split of an odd padding: round(d − 0.1) before, the rest after.
  const left = Math.round((g.width - width) / 2 - 0.1);
  const top = Math.round((g.height - height) / 2 - 0.1);
  return { width, height, left, top };
}

/**
 * Fits an image to a model input in ONE sharp pipeline. From encoded bytes, libvips decodes and
 * resizes together, so a large JPEG is shrunk on load (decoded at 1/2, 1/4 or 1/8) instead of
 * being decoded at full size first. From decoded pixels (when the stage needs the original
 * anyway) it only resizes. Either way the result is 3-channel sRGB: EXIF orientation applied,
 * alpha flattened onto white, CMYK and grey converted.
 */
export async function letterbox(
  input: Buffer | RgbImage,
  g: InputGeometry,
  options: { maxPixels: number },
): Promise<Letterboxed> {
  let pipeline: Sharp;
  let srcW: number;
  let srcH: number;
  if (Buffer.isBuffer(input)) {
    const { width: w, height: h } = await readImageHeader(input, options.maxPixels);
    srcW = w;
    srcH = h;
    // failOn 'warning' refuses truncated data instead of returning grey rows.
    pipeline = sharp(input, { failOn: 'warning', limitInputPixels: options.maxPixels })
      .autoOrient()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb');
  } else {
    srcW = input.width;
    srcH = input.height;
    pipeline = sharp(input.data, { raw: { width: input.width, height: input.height, channels: 3 } });
  }
  const p = placement(srcW, srcH, g);
  // 'linear' is the closest libvips kernel to the bilinear resize the models were trained with.
  pipeline = pipeline.resize(p.width, p.height, { fit: 'fill', kernel: 'linear' });
  const right = g.width - p.width - p.left;
  const bottom = g.height - p.height - p.top;
  if (p.left > 0 || p.top > 0 || right > 0 || bottom > 0) {
    pipeline = pipeline.extend({
      top: p.top,
      left: p.left,
      right,
      bottom,
      background: { r: g.pad, g: g.pad, b: g.pad },
    });
  }
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await pipeline.raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new BadImageError(`image data is corrupt or truncated: ${(err as Error).message}`, { cause: err });
  }
  if (out.info.width !== g.width || out.info.height !== g.height) {
    throw new Error(`letterbox produced ${out.info.width}×${out.info.height}, expected ${g.width}×${g.height}`);
  }
  return {
    data: widenToRgb(out.data, out.info.width * out.info.height, out.info.channels),
    width: g.width,
    height: g.height,
    scaleX: p.width / srcW,
    scaleY: p.height / srcH,
    padX: p.left,
    padY: p.top,
    original: { width: srcW, height: srcH },
  };
}
