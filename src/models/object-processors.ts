import type { ClassifierConfig, Config, ObjectDetectorConfig } from '../config/schema.js';
import type { RgbImage } from '../image/decode.js';
import { jobImage } from '../image/job-image.js';
import { letterbox, type Letterboxed } from '../image/letterbox.js';
import { InternalError } from '../protocol/errors.js';
import type { Job } from '../protocol/job.js';
import type { StageProcessor } from '../stage/processor.js';
import { Classifier } from './classifier.js';
import type { ObjectDetector } from './object-detector.js';
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
  ) {}

  get name(): string {
    return this.detector.family;
  }

  static async load(model: ObjectDetectorConfig, config: Config): Promise<ObjectDetectProcessor> {
    const detector = await loadObjectDetector(model, { modelsDir: config.models_dir, threads: config.detect.threads });
    return new ObjectDetectProcessor(detector, config.limits.max_pixels, config.classify.model.kind === 'classifier');
  }

  describe(): Record<string, unknown> {
    return { ...this.detector.describe(), pixels_downstream: this.classifierFollows ? 'always' : 'when annotating' };
  }

  async process(job: Job): Promise<Job> {
    const timings = job.meta.timings;
    const t0 = performance.now();
    let original: RgbImage | undefined;
    let input: Letterboxed;
    if (this.classifierFollows || job.meta.options.annotate || !job.image || isWatched(job.meta.stream)) {
      original = await jobImage(job, this.maxPixels);
      timings.decode = performance.now() - t0;
      const t1 = performance.now();
      input = await letterbox(original, this.detector.geometry, { maxPixels: this.maxPixels });
      timings.letterbox = performance.now() - t1;
    } else {
      // Nobody downstream needs the full-size pixels: go from the encoded bytes straight to the
      // model's input in one sharp pass (shrink-on-load for large JPEGs).
      input = await letterbox(job.image, this.detector.geometry, { maxPixels: this.maxPixels });
      timings.letterbox = performance.now() - t0;
    }
    const { detections, timings: t } = await this.detector.detect(input);
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
    const chosen = (job.meta.detections ?? []).filter((d) => this.selected === 'all' || this.selected.has(d.label));
    const info = job.meta.pixels;
    if (chosen.length > 0) {
      if (!job.pixels || !info) throw new InternalError('classify got detections without pixels');
      const img: RgbImage = { data: job.pixels, width: info.width, height: info.height, channels: 3 };
      const { classes, timings } = await this.classifier.classify(img, chosen.map((d) => d.box));
      chosen.forEach((d, i) => {
        d.classes = classes[i]!;
      });
      job.meta.timings.crop = timings.crop;
      job.meta.timings.classify_model = timings.infer;
    }
    // Pixels stay only where the sink needs them to draw an annotated image (asked for, or a watched stream).
    if (!job.meta.options.annotate && !isWatched(job.meta.stream)) {
      delete job.pixels;
      delete job.meta.pixels;
    }
    return job;
  }

  async close(): Promise<void> {
    await this.classifier.close();
  }
}
