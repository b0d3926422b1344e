import type { ObjectDetectorConfig } from '../config/schema.js';
import { fillTensor } from '../image/fill-tensor.js';
import type { InputGeometry, Letterboxed } from '../image/letterbox.js';
import type { Detection } from '../protocol/types.js';
import { nms, type Candidate } from './nms.js';
import { ort } from './ort.js';

/**
 * Turns a model's raw outputs into scored boxes in model-input pixels, keeping only those at or
 * above `threshold`. Each family file builds one after checking the output shapes, and binds the
 * outputs it reads (by name, or by shape for NanoDet) at that moment.
 */
export type HeadDecoder = (outputs: ort.InferenceSession.ReturnType, threshold: number) => Candidate[];

/** Everything a family file settles at load time. */
export interface DetectorParts {
  family: string;
  file: string;
  session: ort.InferenceSession;
  inputName: string;
  geometry: InputGeometry;
  labels: readonly string[];
  decode: HeadDecoder;
  /** Extra facts for the ready line (head variant, output names). */
  facts?: Record<string, unknown>;
}

/** Time spent per step of one detect() call, ms. */
export interface DetectTimings {
  tensor: number;
  infer: number;
  head: number;
}

/**
 * The part every object detector shares: normalise the letterboxed image into a tensor, run it,
 * decode the head, suppress duplicates per class, and map boxes back to original pixels.
 */
export class ObjectDetector {
  constructor(
    private readonly parts: DetectorParts,
    private readonly config: ObjectDetectorConfig,
  ) {}

  get family(): string {
    return this.parts.family;
  }

  /** How images must be fitted before detect(). */
  get geometry(): InputGeometry {
    return this.parts.geometry;
  }

  describe(): Record<string, unknown> {
    const { family, file, geometry, labels, facts } = this.parts;
    return {
      model: family,
      file,
      input: `${geometry.width}x${geometry.height}`,
      fit: geometry.fit,
      classes: labels.length,
      score_threshold: this.config.score_threshold,
      nms_iou: this.config.nms_iou,
      ...facts,
    };
  }

  /** Detections on `img`, boxes in original-image pixels clipped to the image, best first. */
  async detect(img: Letterboxed): Promise<{ detections: Detection[]; timings: DetectTimings }> {
    const { geometry, session, inputName, decode, labels } = this.parts;
    if (img.width !== geometry.width || img.height !== geometry.height) {
      throw new Error(`detect got a ${img.width}×${img.height} image for a ${geometry.width}×${geometry.height} model`);
    }
    const t0 = performance.now();
    // A fresh tensor per call: with concurrency > 1 two runs may be in flight at once.
    const data = fillTensor(img.data, img.width, img.height, {
      channels: this.config.channels,
      layout: 'nchw',
      mean: this.config.mean,
      std: this.config.std,
    });
    const input = new ort.Tensor('float32', data, [1, 3, img.height, img.width]);
    const t1 = performance.now();
    const outputs = await session.run({ [inputName]: input });
    const t2 = performance.now();
    const kept = nms(decode(outputs, this.config.score_threshold), this.config.nms_iou, this.config.max_detections);
    const { width: W, height: H } = img.original;
    const detections: Detection[] = [];
    for (const c of kept) {
      const x1 = clamp((c.x1 - img.padX) / img.scaleX, W);
      const y1 = clamp((c.y1 - img.padY) / img.scaleY, H);
      const x2 = clamp((c.x2 - img.padX) / img.scaleX, W);
      const y2 = clamp((c.y2 - img.padY) / img.scaleY, H);
      // A box entirely in the padding has nothing left after clipping.
      if (x2 - x1 < 1 || y2 - y1 < 1) continue;
      detections.push({ box: [x1, y1, x2, y2], score: c.score, label: labels[c.cls] ?? String(c.cls) });
    }
    for (const t of Object.values(outputs)) t.dispose();
    return { detections, timings: { tensor: t1 - t0, infer: t2 - t1, head: performance.now() - t2 } };
  }

  async close(): Promise<void> {
    await this.parts.session.release();
  }
}

function clamp(v: number, max: number): number {
  return v < 0 ? 0 : v > max ? max : v;
}
