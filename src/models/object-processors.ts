import type { ClassifierConfig, Config, ObjectDetectorConfig } from '../config/schema.js';
import type { RgbImage } from '../image/decode.js';
import { jobImage } from '../image/job-image.js';
import { letterbox, type Letterboxed } from '../image/letterbox.js';
import { InternalError } from '../protocol/errors.js';
import type { Job } from '../protocol/job.js';
import type { Detection } from '../protocol/types.js';
import type { StageProcessor } from '../stage/processor.js';
import { Classifier } from './classifier.js';
import type { DetectTimings, ObjectDetector } from './object-detector.js';
import { isWatched } from '../dashboard/watched.js';

/** Loads the runner of one detector family (each lives in its own file, loaded on demand). */
export async function loadObjectDetector(model: ObjectDetectorConfig, options: { modelsDir: string; threads: number }): Promise<ObjectDetector> {
  switch (model.kind) {
    case 'yolox':
      return (await import('./yolox.js')).loadYolox(model, options);
    case 'yolov8':
      return (await import('./yolov8.js')).loadYolov8(model, options);
    case 'nanodet':
      return (await import('./nanodet.js')).loadNanodet(model, options);
    case 'rfb-faces':
      return (await import('./rfb-faces.js')).loadRfbFaces(model, options);
  }
}

/**
 * detect stage of the objects and faces profiles. When nothing downstream needs the original
 * pixels, the image goes from encoded bytes to the model input in one sharp pass (a big JPEG is
 * shrunk while it is decoded). When the classifier will crop from it, or the sink will draw on
 * it, the image is decoded once at full size, letterboxed from those pixels, and the pixels
 * travel on as their own frame.
 */
export class ObjectDetectProcessor implements StageProcessor {
  constructor(
    private readonly detector: ObjectDetector,
    private readonly maxPixels: number,
    /** A classifier follows in the classify stage and crops from the original pixels. */
    private readonly classifierFollows: boolean,
  ) {
    this.processBatch = detector.batch === undefined ? (jobs) => this.detectBatch(jobs) : undefined;
  }

  get name(): string {
    return this.detector.family;
  }

  /**
   * Jobs at once when `concurrency` is auto: one being inferred (N with the model in N workers)
   * and one more whose image sharp decodes and letterboxes meanwhile, on its own threads. Two
   * on the stage's thread: 1.12× one (`npm run bench -- detect-settings`).
   */
  get parallelism(): number {
    return Math.max(1, this.detector.workers) + 1;
  }

  health(): string | undefined {
    return this.detector.health();
  }

  static async load(model: ObjectDetectorConfig, config: Config): Promise<ObjectDetectProcessor> {
    const threads = config.detect.threads;
    const detector = await loadObjectDetector(model, { modelsDir: config.models_dir, threads });
    // auto: the stage's own thread. In the pipeline a worker measured within the noise of two
    // jobs at once on the stage's thread (docs/benchmarks.md detect-settings) and costs a V8 heap
    // and a session (~70 MiB); in a process that also classifies it pays.
    const workers = model.workers === 'auto' ? 0 : model.workers;
    try {
      if (workers > 0) await detector.runInWorkers(workers, Math.max(1, Math.floor(threads / workers)));
    } catch (err) {
      await detector.close();
      throw err;
    }
    return new ObjectDetectProcessor(detector, config.limits.max_pixels, config.classify.model.kind === 'classifier');
  }

  describe(): Record<string, unknown> {
    return { ...this.detector.describe(), pixels_downstream: this.classifierFollows ? 'always' : 'when annotating' };
  }

  async process(job: Job): Promise<Job> {
    const prepared = await this.prepare(job);
    const { detections, timings } = await this.detector.detect(prepared.input);
    return this.finish(job, prepared, detections, timings);
  }

  /**
   * Only for a model whose batch axis is dynamic (none of the shared detectors: theirs is fixed
   * at 1, and the stage loops over process()). Every job is decoded and letterboxed on its own,
   * so a bad image fails alone; the rest run as one inference call.
   */
  readonly processBatch: ((jobs: Job[]) => Promise<PromiseSettledResult<Job>[]>) | undefined;

  private async detectBatch(jobs: Job[]): Promise<PromiseSettledResult<Job>[]> {
    const prepared = await Promise.allSettled(jobs.map((job) => this.prepare(job)));
    const ready = prepared.flatMap((p, i) => (p.status === 'fulfilled' ? [{ job: jobs[i]!, p: p.value }] : []));
    const found = ready.length === 0 ? undefined : await this.detector.detectMany(ready.map((r) => r.p.input));
    let k = 0;
    return prepared.map((p, i): PromiseSettledResult<Job> => {
      if (p.status === 'rejected') return p;
      const value = this.finish(jobs[i]!, p.value, found!.detections[k++]!, found!.timings);
      return { status: 'fulfilled', value };
    });
  }

  /** The model input of one job, and its full-size pixels when a later stage needs them. */
  private async prepare(job: Job): Promise<{ input: Letterboxed; original?: RgbImage }> {
    const timings = job.meta.timings;
    const t0 = performance.now();
    if (this.classifierFollows || job.meta.options.annotate || !job.image || isWatched(job.meta.stream)) {
      const original = await jobImage(job, this.maxPixels);
      timings.decode = performance.now() - t0;
      const t1 = performance.now();
      const input = await letterbox(original, this.detector.geometry, { maxPixels: this.maxPixels });
      timings.letterbox = performance.now() - t1;
      return { input, original };
    }
    // Nobody downstream needs the full-size pixels: go from the encoded bytes straight to the
    // model's input in one sharp pass (shrink-on-load for large JPEGs).
    const input = await letterbox(job.image, this.detector.geometry, { maxPixels: this.maxPixels });
    timings.letterbox = performance.now() - t0;
    return { input };
  }

  private finish(job: Job, prepared: { input: Letterboxed; original?: RgbImage }, detections: Detection[], t: DetectTimings): Job {
    const { input, original } = prepared;
    const timings = job.meta.timings;
    timings.tensor = t.tensor;
    timings.detect_model = t.infer;
    timings.head = t.head;
    job.meta.width = input.original.width;
    job.meta.height = input.original.height;
    job.meta.detections = detections;
    // The encoded bytes are not needed past this point.
    delete job.image;
    if (original) {
      job.pixels = original.data;
      job.meta.pixels = { width: original.width, height: original.height, channels: 3 };
    }
    return job;
  }

  async close(): Promise<void> {
    await this.detector.close();
  }
}

/**
 * classify stage of the objects profile: the crop of every selected detection goes through the
 * classifier, all crops of one image in one batch, and the top-k lands in `detection.classes`.
 */
export class ClassifierProcessor implements StageProcessor {
  readonly name = 'classifier';
  private readonly selected: ReadonlySet<string> | 'all';

  constructor(private readonly classifier: Classifier, config: ClassifierConfig) {
    this.selected = config.labels === 'all' ? 'all' : new Set(config.labels);
  }

  static async load(model: ClassifierConfig, config: Config): Promise<ClassifierProcessor> {
    const classifier = await Classifier.load(model, { modelsDir: config.models_dir, threads: config.classify.threads });
    return new ClassifierProcessor(classifier, model);
  }

  describe(): Record<string, unknown> {
    return this.classifier.describe();
  }

  async process(job: Job): Promise<Job> {
    const [outcome] = await this.processBatch([job]);
    if (outcome!.status === 'rejected') throw outcome!.reason;
    return outcome!.value;
  }

  /**
   * The crops of every job in shared classifier calls (up to `model.batch` crops each). A job
   * whose detections come without pixels fails alone; the jobs are changed only after the
   * inference has succeeded.
   */
  async processBatch(jobs: Job[]): Promise<PromiseSettledResult<Job>[]> {
    const outcomes: PromiseSettledResult<Job>[] = [];
    const work: { job: Job; chosen: Detection[]; img: RgbImage }[] = [];
    for (const job of jobs) {
      const chosen = (job.meta.detections ?? []).filter((d) => this.selected === 'all' || this.selected.has(d.label));
      const info = job.meta.pixels;
      if (chosen.length > 0 && (!job.pixels || !info)) {
        outcomes.push({ status: 'rejected', reason: new InternalError('classify got detections without pixels') });
        continue;
      }
      outcomes.push({ status: 'fulfilled', value: job });
      if (chosen.length > 0) work.push({ job, chosen, img: { data: job.pixels!, width: info!.width, height: info!.height, channels: 3 } });
    }
    if (work.length > 0) {
      const { classes, timings } = await this.classifier.classifyMany(work.map((w) => ({ img: w.img, boxes: w.chosen.map((d) => d.box) })));
      work.forEach(({ job, chosen }, j) => {
        chosen.forEach((d, i) => {
          d.classes = classes[j]![i]!;
        });
        job.meta.timings.crop = timings.crop;
        job.meta.timings.classify_model = timings.infer;
      });
    }
    for (const o of outcomes) {
      if (o.status !== 'fulfilled') continue;
      const job = o.value;
      // Pixels stay only where the sink needs them to draw an annotated image (asked for, or a watched stream).
      if (!job.meta.options.annotate && !isWatched(job.meta.stream)) {
        delete job.pixels;
        delete job.meta.pixels;
      }
    }
    return outcomes;
  }

  async close(): Promise<void> {
    await this.classifier.close();
  }
}
