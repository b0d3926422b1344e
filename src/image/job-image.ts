import { InternalError, TooLargeError } from '../protocol/errors.js';
import type { Job } from '../protocol/job.js';
import { decodeImage, widenToRgb, type RgbImage } from './decode.js';

/**
 * The job's image as RGB pixels, whichever way it came: encoded bytes (decoded here, once) or
 * a raw frame from the client (BGR and gray widened to RGB here, once). The job is left holding
 * RGB pixels, so later stages never convert again.
 */
export async function jobImage(job: Job, maxPixels: number): Promise<RgbImage> {
  const info = job.meta.pixels;
  if (job.pixels && info) {
    if (info.width * info.height > maxPixels) {
      throw new TooLargeError(`image is ${info.width}×${info.height} = ${info.width * info.height} pixels; the limit is ${maxPixels}`);
    }
    const img = toRgb(job.pixels, info.width, info.height, info.order ?? 'rgb');
    job.pixels = img.data;
    job.meta.pixels = { width: img.width, height: img.height, channels: 3 };
    return img;
  }
  if (!job.image) throw new InternalError('job carries neither an image nor pixels');
  return decodeImage(job.image, { maxPixels });
}

function toRgb(data: Buffer, width: number, height: number, order: 'rgb' | 'bgr' | 'gray'): RgbImage {
  if (order === 'rgb') return { data, width, height, channels: 3 };
  if (order === 'gray') return { data: widenToRgb(data, width * height, 1), width, height, channels: 3 };
  const out = Buffer.allocUnsafe(width * height * 3);
  for (let j = 0; j < out.length; j += 3) {
    out[j] = data[j + 2]!;
    out[j + 1] = data[j + 1]!;
    out[j + 2] = data[j]!;
  }
  return { data: out, width, height, channels: 3 };
}
