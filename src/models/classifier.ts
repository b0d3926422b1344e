import sharp from 'sharp';
import type { ClassifierConfig } from '../config/schema.js';
import { resolveModelFile } from '../config/load.js';
import type { RgbImage } from '../image/decode.js';
import { fillTensor } from '../image/fill-tensor.js';
import type { Box, ClassScore } from '../protocol/types.js';
import { formatShape, formatSpecs, imageInput, mismatch, readNames, tensorSpecs, type ImageInput } from './model-io.js';
import { createSession, ort, outputByName } from './ort.js';
import { meters } from '../metrics/meters.js';

/** Time spent per step of one classify() call, ms. */
export interface ClassifyTimings {
  crop: number;
  infer: number;
}

/**
 * ImageNet-style classifier (MobileNet, ResNet, EfficientNet exports): each region is cropped
 * with some margin, its shorter side resized to `resize_shorter` and the centre cut out at the
 * input size (MANIFEST §2.4), then all crops of one image run as one batch when the model's
 * batch axis is dynamic. Output: softmax top-k per region.
 */
export class Classifier {
  private constructor(
    private readonly config: ClassifierConfig,
    private readonly file: string,
    private readonly session: ort.InferenceSession,
    private readonly input: ImageInput,
    private readonly outputName: string,
    private readonly names: readonly string[],
  ) {}

  static async load(config: ClassifierConfig, options: { modelsDir: string; threads: number }): Promise<Classifier> {
    const file = resolveModelFile(config.path, options.modelsDir);
    const names = await readNames(resolveModelFile(config.names, options.modelsDir), config.short_names);
    const session = await createSession(file, { threads: options.threads });
    try {
      const input = imageInput(file, 'classifier', session, { layout: config.layout, configured: config.input_size });
      const outputs = tensorSpecs(session.outputMetadata);
      const out = outputs.length === 1 ? outputs[0]! : outputs.find((o) => o.name === 'output');
      if (!out || out.shape.length !== 2) {
        throw mismatch(file, 'classifier', `expected one output [batch, classes], model has ${formatSpecs(outputs)}`);
      }
      if (out.shape[1] !== names.length) {
        throw mismatch(file, 'classifier', `output ${out.name} ${formatShape(out.shape)} has ${String(out.shape[1])} classes but ${config.names} lists ${names.length}`);
      }
      return new Classifier(config, file, session, input, out.name, names);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  describe(): Record<string, unknown> {
    return {
      model: 'classifier',
      file: this.file,
      input: `${this.input.width}x${this.input.height}`,
      batch: this.input.batch ?? `dynamic (≤ ${this.config.batch})`,
      classes: this.names.length,
      top_k: this.config.top_k,
      labels: this.config.labels,
    };
  }

  /**
   * Top-k classes of each box's crop of `img` (boxes in `img` pixels), in box order. `margin`
   * overrides the configured crop margin (0 with the whole image reproduces the reference setup).
   */
  async classify(img: RgbImage, boxes: readonly Box[], margin = this.config.margin): Promise<{ classes: ClassScore[][]; timings: ClassifyTimings }> {
    const { classes, timings } = await this.classifyMany([{ img, boxes }], margin);
    return { classes: classes[0]!, timings };
  }

  /**
   * The crops of several images (several requests, batched by the classify stage) in shared
   * inference calls of up to `batch` crops each: one list of top-k lists per image, in order.
   */
  async classifyMany(
    items: readonly { img: RgbImage; boxes: readonly Box[] }[],
    margin = this.config.margin,
  ): Promise<{ classes: ClassScore[][][]; timings: ClassifyTimings }> {
    const t0 = performance.now();
    const perItem = await Promise.all(items.map(({ img, boxes }) => Promise.all(boxes.map((b) => this.crop(img, b, margin)))));
    const crops = perItem.flat();
    const t1 = performance.now();
    const { width, height } = this.input;
    const per = width * height * 3;
    const chunk = this.input.batch ?? this.config.batch;
    const dims = (n: number) => (this.config.layout === 'nchw' ? [n, 3, height, width] : [n, height, width, 3]);
    const flat: ClassScore[][] = [];
    for (let start = 0; start < crops.length; start += chunk) {
      const part = crops.slice(start, start + chunk);
      // A fixed batch axis takes exactly its size; the unused slots stay zero.
      const n = this.input.batch ?? part.length;
      const data = new Float32Array(n * per);
      part.forEach((c, i) => fillTensor(c, width, height, this.config, data, i * per));
      meters()?.batch.observe({ model: 'classifier' }, n);
      const outputs = await this.session.run({ [this.input.name]: new ort.Tensor('float32', data, dims(n)) });
      const logits = outputByName(outputs, this.outputName).data as Float32Array;
      const k = this.names.length;
      for (let i = 0; i < part.length; i++) flat.push(this.topK(logits.subarray(i * k, (i + 1) * k)));
    }
    const classes: ClassScore[][][] = [];
    let at = 0;
    for (const c of perItem) {
      classes.push(flat.slice(at, at + c.length));
      at += c.length;
    }
    return { classes, timings: { crop: t1 - t0, infer: performance.now() - t1 } };
  }

  async close(): Promise<void> {
    await this.session.release();
  }

  /** One crop, resized and centre-cut to the model input: width × height × 3 RGB bytes. */
  private async crop(img: RgbImage, box: Box, margin: number): Promise<Buffer> {
    const { width: inW, height: inH } = this.input;
    const mx = (box[2] - box[0]) * margin;
    const my = (box[3] - box[1]) * margin;
    const left = Math.max(0, Math.min(img.width - 1, Math.floor(box[0] - mx)));
    const top = Math.max(0, Math.min(img.height - 1, Math.floor(box[1] - my)));
    const width = Math.max(1, Math.min(img.width, Math.ceil(box[2] + mx)) - left);
    const height = Math.max(1, Math.min(img.height, Math.ceil(box[3] + my)) - top);
    let p = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).extract({ left, top, width, height });
    const shorter = this.config.resize_shorter;
    if (shorter > 0) {
      const s = shorter / Math.min(width, height);
      const rw = Math.max(inW, Math.round(width * s));
      const rh = Math.max(inH, Math.round(height * s));
      p = p
        .resize(rw, rh, { fit: 'fill', kernel: this.config.resize_kernel })
        .extract({ left: Math.round((rw - inW) / 2), top: Math.round((rh - inH) / 2), width: inW, height: inH });
    } else {
      p = p.resize(inW, inH, { fit: 'fill', kernel: this.config.resize_kernel });
    }
    return p.raw().toBuffer();
  }

  private topK(scores: Float32Array): ClassScore[] {
    const k = Math.min(this.config.top_k, scores.length);
    let probs: Float32Array = scores;
    if (this.config.output === 'logits') {
      let max = -Infinity;
      for (let i = 0; i < scores.length; i++) if (scores[i]! > max) max = scores[i]!;
      probs = new Float32Array(scores.length);
      let sum = 0;
      for (let i = 0; i < scores.length; i++) sum += probs[i] = Math.exp(scores[i]! - max);
      for (let i = 0; i < probs.length; i++) probs[i] /= sum;
    }
    // Insertion into a k-long list: k is small, the class count is not.
    const best: number[] = [];
    for (let i = 0; i < probs.length; i++) {
      if (best.length === k && probs[i]! <= probs[best[k - 1]!]!) continue;
      let j = best.length < k ? best.length : k - 1;
      while (j > 0 && probs[best[j - 1]!]! < probs[i]!) {
        best[j] = best[j - 1]!;
        j--;
      }
      best[j] = i;
    }
    return best.map((i) => ({ label: this.names[i]!, score: probs[i]! }));
  }
}
