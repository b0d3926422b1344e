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
  await readImageHeader(bytes, options.maxPixels);
  try {
    // failOn 'warning' makes libvips refuse truncated or corrupt data instead of returning grey rows.
    const { data, info } = await sharp(bytes, { failOn: 'warning', limitInputPixels: options.maxPixels })
      .autoOrient()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    // Grayscale input can come out with one channel; widen it here so every model sees RGB.
    return { data: widenToRgb(data, info.width * info.height, info.channels), width: info.width, height: info.height, channels: 3 };
  } catch (err) {
    throw new BadImageError(`image data is corrupt or truncated: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reads only the image's header and refuses it before any pixel is decoded: BAD_IMAGE when it is
 * not an image, TOO_LARGE when width × height (after EXIF rotation) exceeds `maxPixels` — so a
 * decompression bomb (a small file declaring a huge size) costs nothing. sharp's own pixel limit
 * is off for this read, or it would answer a bomb with a generic error instead of ours.
 */
export async function readImageHeader(bytes: Buffer, maxPixels: number): Promise<{ width: number; height: number; meta: Metadata }> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new BadImageError(`not a decodable image: ${(err as Error).message}`, { cause: err });
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new BadImageError('image has no size');
  if (width * height > maxPixels) {
    throw new TooLargeError(`image is ${width}×${height} = ${width * height} pixels; the limit is ${maxPixels}`);
  }
  return { width, height, meta };
}

/** libvips keeps a grey image at one band (two with alpha) even after toColourspace: widen it to RGB. */
export function widenToRgb(data: Buffer, pixels: number, channels: number): Buffer {
  if (channels === 3) return data;
  const out = Buffer.allocUnsafe(pixels * 3);
  const grey = channels < 3;
  for (let i = 0, j = 0; j < out.length; i += channels, j += 3) {
    const v = data[i]!;
    out[j] = v;
    out[j + 1] = grey ? v : data[i + 1]!;
    out[j + 2] = grey ? v : data[i + 2]!;
  }
  return out;
}
