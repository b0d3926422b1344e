import path from 'node:path';
import sharp from 'sharp';
import { resolveModelFile } from '../config/load.js';
import type { OcrDetConfig } from '../config/schema.js';
import type { RgbImage } from '../image/decode.js';
import { readingOrder } from '../image/reading-order.js';
import { loadOpenCv, type OpenCv } from '../image/opencv.js';
import { PADDLE_DET, fillTensor } from '../image/fill-tensor.js';
import type { Box, Point } from '../protocol/types.js';
import { dbPostprocess, type DbParams } from './db-postprocess.js';
import { createSession, ort, outputByName } from './ort.js';

/** One text line found in an image. */
export interface TextRegion {
  /** 4 corners in original image pixels, clockwise from the top-left corner of the rotated rectangle as it lies in the image. */
  polygon: Point[];
  /** Axis-aligned bounds of `polygon`, clipped to the image. */
  box: Box;
  /** Mean text probability inside the region's core. */
  score: number;
}

/** Milliseconds spent in each step of the last detect() call (for benchmarks and tests). */
export interface DetTimings {
  resize: number;
  tensor: number;
  infer: number;
  post: number;
}

const OUTPUT = 'sigmoid_0.tmp_0';
const STRIDE = 32;

/** PP-OCRv4 text detector (DB): where are the text lines. */
export class TextDetector {
  /** Timings of the most recent detect(). */
  lastTimings: DetTimings = { resize: 0, tensor: 0, infer: 0, post: 0 };

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly cv: OpenCv,
    private readonly file: string,
    private readonly cfg: OcrDetConfig,
    private readonly threads: number,
  ) {}

  static async load(cfg: OcrDetConfig, opts: { modelsDir: string; threads: number }): Promise<TextDetector> {
    const file = resolveModelFile(cfg.path, opts.modelsDir);
    const [session, cv] = await Promise.all([createSession(file, { threads: opts.threads }), loadOpenCv()]);
    return new TextDetector(session, cv, file, cfg, opts.threads);
  }

  describe(): Record<string, unknown> {
    return {
      model: path.basename(this.file),
      max_side: this.cfg.max_side,
      threshold: this.cfg.threshold,
      box_threshold: this.cfg.box_threshold,
      unclip_ratio: this.cfg.unclip_ratio,
      threads: this.threads,
    };
  }

  async detect(img: RgbImage): Promise<TextRegion[]> {
    const t0 = performance.now();
    const { width: mw, height: mh } = inputSize(img.width, img.height, this.cfg.max_side);
    const resized = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize(mw, mh, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer();
    const t1 = performance.now();
    const input = new Float32Array(3 * mw * mh);
    fillTensor(resized, mw, mh, PADDLE_DET, input);
    const t2 = performance.now();
    const inputName = this.session.inputNames[0]!;
    const out = await this.session.run({ [inputName]: new ort.Tensor('float32', input, [1, 3, mh, mw]) });
    const prob = outputByName(out, OUTPUT);
    const t3 = performance.now();
    const params: DbParams = {
      threshold: this.cfg.threshold,
      boxThreshold: this.cfg.box_threshold,
      unclipRatio: this.cfg.unclip_ratio,
      minSize: this.cfg.min_size,
      maxRegions: this.cfg.max_regions,
    };
    const boxes = dbPostprocess(
      this.cv,
      { data: prob.data as Float32Array, width: mw, height: mh, srcWidth: img.width, srcHeight: img.height },
      params,
    );
    const regions = readingOrder(boxes);
    const t4 = performance.now();
    this.lastTimings = { resize: t1 - t0, tensor: t2 - t1, infer: t3 - t2, post: t4 - t3 };
    return regions;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/**
 * PaddleOCR's limit_type "max": shrink only when the longer side is over the limit, then round
 * each side to the nearest multiple of 32 (the network downsamples by 32), at least 32.
 */
export function inputSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const ratio = Math.max(width, height) > maxSide ? maxSide / Math.max(width, height) : 1;
  return {
    width: Math.max(STRIDE, Math.round((width * ratio) / STRIDE) * STRIDE),
    height: Math.max(STRIDE, Math.round((height * ratio) / STRIDE) * STRIDE),
  };
}
