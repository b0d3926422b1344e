import type { ObjectDetectorConfig } from '../config/schema.js';
import { fillTensor } from '../image/fill-tensor.js';
import type { InputGeometry, Letterboxed } from '../image/letterbox.js';
import type { Detection } from '../protocol/types.js';
import { nms, type Candidate } from './nms.js';
import { ort } from './ort.js';
import { SessionPool } from './ort-pool.js';

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
  /** The model's fixed batch size, or undefined when its batch axis is dynamic (then detectMany() batches). */
  batch: number | undefined;
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
  /** The model's sessions in worker threads (runInWorkers); absent: `parts.session` on this thread. */
  private pool?: SessionPool;
  private workerCount = 0;

  constructor(
    private readonly parts: DetectorParts,
    private readonly config: ObjectDetectorConfig,
  ) {}

  /**
   * Moves inference into `workers` worker threads of `threads` ONNX Runtime threads each. The
   * stage's own thread then decodes, letterboxes and moves messages while the model runs:
   * onnxruntime-node's run() holds the thread that calls it for the whole inference, so with one
   * session on the stage's thread the next image cannot even be decoded meanwhile. The session
   * the family file loaded (to check the model) is let go.
   */
  async runInWorkers(workers: number, threads: number): Promise<void> {
    if (workers < 1 || this.pool) return;
    this.pool = await SessionPool.create({ model: this.parts.file }, { workers, threads });
    this.workerCount = workers;
    await this.parts.session.release();
  }

  /** Undefined while inference can run; why not once every worker died for good. */
  health(): string | undefined {
    return this.pool?.dead ? `every ONNX Runtime worker of ${this.parts.family} died and none could start again` : undefined;
  }

  /** Worker threads running the model; 0 when it runs on the stage's own thread. */
  get workers(): number {
    return this.workerCount;
  }

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
      workers: this.workerCount,
      ...facts,
    };
  }

  /** The model's fixed batch size; undefined when the batch axis is dynamic. */
  get batch(): number | undefined {
    return this.parts.batch;
  }

  /** Detections on `img`, boxes in original-image pixels clipped to the image, best first. */
  async detect(img: Letterboxed): Promise<{ detections: Detection[]; timings: DetectTimings }> {
    const { detections, timings } = await this.detectMany([img]);
    return { detections: detections[0]!, timings };
  }

  /**
   * Detections on several images (all letterboxed to the same input size) in one inference call:
   * a dynamic batch axis takes them all; a fixed one only a batch of its size, so a model with a
   * fixed batch of 1 must be given one image at a time.
   */
  async detectMany(imgs: readonly Letterboxed[]): Promise<{ detections: Detection[][]; timings: DetectTimings }> {
    const { geometry, session, inputName, batch } = this.parts;
    for (const img of imgs) {
      if (img.width !== geometry.width || img.height !== geometry.height) {
        throw new Error(`detect got a ${img.width}×${img.height} image for a ${geometry.width}×${geometry.height} model`);
      }
    }
    const n = imgs.length;
    if (batch !== undefined && batch !== n) throw new Error(`the model's batch is fixed at ${batch}; got ${n} images`);
    const t0 = performance.now();
    const per = 3 * geometry.width * geometry.height;
    // A fresh tensor per call: with concurrency > 1 two runs may be in flight at once.
    const data = new Float32Array(n * per);
    imgs.forEach((img, i) =>
      fillTensor(img.data, img.width, img.height, { channels: this.config.channels, layout: 'nchw', mean: this.config.mean, std: this.config.std }, data, i * per),
    );
    const dims = [n, 3, geometry.height, geometry.width];
    const t1 = performance.now();
    let outputs: ort.InferenceSession.ReturnType;
    // The model's own time: in a worker, without the wait for a free one (that stays in the stage's time).
    let inferMs: number;
    if (this.pool) {
      ({ outputs, ms: inferMs } = await this.runPooled(data, dims));
    } else {
      outputs = await session.run({ [inputName]: new ort.Tensor('float32', data, dims) });
      inferMs = performance.now() - t1;
    }
    const t2 = performance.now();
    const detections = imgs.map((img, i) => this.boxes(n === 1 ? outputs : itemOutputs(outputs, i, n), img));
    for (const t of Object.values(outputs)) t.dispose();
    return { detections, timings: { tensor: t1 - t0, infer: inferMs, head: performance.now() - t2 } };
  }

  /** One inference in a worker; its outputs as tensors again, so the head decoders read them as from a session. */
  private async runPooled(data: Float32Array, dims: number[]): Promise<{ outputs: ort.InferenceSession.ReturnType; ms: number }> {
    const r = await this.pool!.run('model', data, dims, '', 'all', this.parts.inputName);
    if (!('outputs' in r)) throw new Error('detector worker returned no outputs');
    const outputs: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(r.outputs)) outputs[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
    return { outputs, ms: r.ms };
  }

  /** One image's decoded, suppressed boxes, mapped back to its original pixels. */
  private boxes(outputs: ort.InferenceSession.ReturnType, img: Letterboxed): Detection[] {
    const kept = nms(this.parts.decode(outputs, this.config.score_threshold), this.config.nms_iou, this.config.max_detections);
    const { width: W, height: H } = img.original;
    const detections: Detection[] = [];
    for (const c of kept) {
      const x1 = clamp((c.x1 - img.padX) / img.scaleX, W);
      const y1 = clamp((c.y1 - img.padY) / img.scaleY, H);
      const x2 = clamp((c.x2 - img.padX) / img.scaleX, W);
      const y2 = clamp((c.y2 - img.padY) / img.scaleY, H);
      // A box entirely in the padding has nothing left after clipping.
      if (x2 - x1 < 1 || y2 - y1 < 1) continue;
      detections.push({ box: [x1, y1, x2, y2], score: c.score, label: this.parts.labels[c.cls] ?? String(c.cls) });
    }
    return detections;
  }

  async close(): Promise<void> {
    if (this.pool) await this.pool.close();
    else await this.parts.session.release();
  }
}

/**
 * Item `i` of a batched run as if it had run alone: every output whose first axis is the batch
 * becomes a [1, …] view of its slice, so each family's head decoder reads it unchanged.
 */
function itemOutputs(outputs: ort.InferenceSession.ReturnType, i: number, n: number): ort.InferenceSession.ReturnType {
  const one: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(outputs)) {
    if (t.dims[0] !== n || !(t.data instanceof Float32Array)) {
      one[name] = t;
      continue;
    }
    const per = t.data.length / n;
    one[name] = new ort.Tensor('float32', t.data.subarray(i * per, (i + 1) * per), [1, ...t.dims.slice(1)]);
  }
  return one;
}

function clamp(v: number, max: number): number {
  return v < 0 ? 0 : v > max ? max : v;
}
