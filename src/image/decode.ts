import sharp, { type Metadata } from 'sharp';
import { BadImageError, TooLargeError } from '../protocol/errors.js';

/** Decoded pixels: interleaved uint8 RGB (sRGB), row-major, no padding. */
export interface RgbImage {
  data: Buffer;
  width: number;
  height: number;
  channels: 3;
}

export interface DecodeOptions {
  /** Width × height above which the image is refused before its pixels are decoded. */
  maxPixels: number;
}

/**
 * Decodes any image users send (JPEG incl. CMYK and EXIF-rotated, PNG incl. grayscale and
 * RGBA, WebP, GIF, TIFF, AVIF) to 3-channel sRGB, once. The header is read first so that a
 * decompression bomb (small file, huge declared size) is refused without allocating it.
 */
export async function decodeImage(bytes: Buffer, options: DecodeOptions): Promise<RgbImage> {
  let meta: Metadata;
  try {
    // Only the header is read here, so no pixel limit yet: ours below gives the better error.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new BadImageError(`not a decodable image: ${(err as Error).message}`, { cause: err });
  }
  const { width, height } = meta;
  if (!width || !height) throw new BadImageError('image has no size');
  if (width * height > options.maxPixels) {
    throw new TooLargeError(`image is ${width}×${height} = ${width * height} pixels; the limit is ${options.maxPixels}`);
  }
  try {
    // failOn 'warning' makes libvips refuse truncated or corrupt data instead of returning grey rows.
    const { data, info } = await sharp(bytes, { failOn: 'warning', limitInputPixels: options.maxPixels })
      .autoOrient()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) {
      // Grayscale input can come out with one channel; widen it here so every model sees RGB.
      return toRgb(data, info.width, info.height, info.channels);
    }
    return { data, width: info.width, height: info.height, channels: 3 };
  } catch (err) {
    throw new BadImageError(`image data is corrupt or truncated: ${(err as Error).message}`, { cause: err });
  }
}

function toRgb(data: Buffer, width: number, height: number, channels: number): RgbImage {
  const out = Buffer.allocUnsafe(width * height * 3);
  for (let i = 0, j = 0; j < out.length; i += channels, j += 3) {
    const g = data[i]!;
    out[j] = g;
    out[j + 1] = channels >= 3 ? data[i + 1]! : g;
    out[j + 2] = channels >= 3 ? data[i + 2]! : g;
  }
  return { data: out, width, height, channels: 3 };
}
