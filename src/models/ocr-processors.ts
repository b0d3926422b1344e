import type { Config, OcrDetConfig, OcrRecConfig } from '../config/schema.js';
import type { RgbImage } from '../image/decode.js';
import { jobImage } from '../image/job-image.js';
import { InternalError } from '../protocol/errors.js';
import type { Job } from '../protocol/job.js';
import type { Detection } from '../protocol/types.js';
import type { StageProcessor } from '../stage/processor.js';
import { TextDetector } from './ocr-det.js';
import { TextRecognizer } from './ocr-rec.js';
import { isWatched } from '../dashboard/watched.js';

/**
 * detect stage of the OCR profile: decode once, find text regions, and hand the decoded pixels
 * on as their own frame so that classify crops lines without decoding the image again.
 */
export class OcrDetectProcessor implements StageProcessor {
  readonly name = 'ocr-det';
  private constructor(
    private readonly detector: TextDetector,
    private readonly maxPixels: number,
  ) {}

  static async load(model: OcrDetConfig, config: Config): Promise<OcrDetectProcessor> {
    const detector = await TextDetector.load(model, { modelsDir: config.models_dir, threads: config.detect.threads });
    return new OcrDetectProcessor(detector, config.limits.max_pixels);
  }

  describe(): Record<string, unknown> {
    return this.detector.describe();
  }

  async process(job: Job): Promise<Job> {
    const t0 = performance.now();
    const img = await jobImage(job, this.maxPixels);
    const t1 = performance.now();
    const regions = await this.detector.detect(img);
    const t2 = performance.now();
    job.meta.width = img.width;
    job.meta.height = img.height;
    job.meta.detections = regions.map(
      (r): Detection => ({ box: r.box, score: r.score, label: 'text', polygon: r.polygon }),
    );
    job.meta.timings.decode = t1 - t0;
    job.meta.timings.detect_model = t2 - t1;
    // The encoded bytes are not needed past this point; the pixels are, by classify.
    delete job.image;
    job.pixels = img.data;
    job.meta.pixels = { width: img.width, height: img.height, channels: 3 };
    return job;
  }

  async close(): Promise<void> {
    await this.detector.close();
  }
}

/** classify stage of the OCR profile: read every region's text, upright or upside down. */
export class OcrClassifyProcessor implements StageProcessor {
  readonly name = 'ocr-rec';
  private constructor(
    private readonly recognizer: TextRecognizer,
    private readonly minTextScore: number,
  ) {}

  static async load(model: OcrRecConfig, config: Config): Promise<OcrClassifyProcessor> {
    const recognizer = await TextRecognizer.load(model, { modelsDir: config.models_dir, threads: config.classify.threads });
    return new OcrClassifyProcessor(recognizer, model.min_text_score);
  }

  health(): string | undefined {
    return this.recognizer.health();
  }

  /** One job per recognizer worker: with a pool, two jobs keep two workers busy. */
  get parallelism(): number {
    return this.recognizer.parallelism;
  }

  describe(): Record<string, unknown> {
    return this.recognizer.describe();
  }

  async process(job: Job): Promise<Job> {
    const [outcome] = await this.processBatch([job]);
    if (outcome!.status === 'rejected') throw outcome!.reason;
    return outcome!.value;
  }

  /**
   * The lines of every job share recognizer batches (up to `model.batch` lines per call). A job
   * whose regions come without pixels fails alone; the jobs are changed only after recognition
   * has succeeded.
   */
  async processBatch(jobs: Job[]): Promise<PromiseSettledResult<Job>[]> {
    const outcomes: PromiseSettledResult<Job>[] = [];
    const work: { job: Job; detections: Detection[]; img: RgbImage }[] = [];
    for (const job of jobs) {
      const detections = job.meta.detections ?? [];
      const info = job.meta.pixels;
      if (detections.length > 0 && (!job.pixels || !info)) {
        outcomes.push({ status: 'rejected', reason: new InternalError('classify got text regions without pixels') });
        continue;
      }
      outcomes.push({ status: 'fulfilled', value: job });
      if (detections.length > 0) work.push({ job, detections, img: { data: job.pixels!, width: info!.width, height: info!.height, channels: 3 } });
    }
    if (work.length > 0) {
      const t0 = performance.now();
      const lines = await this.recognizer.recognizeMany(
        work.map(({ img, detections }) => ({ img, regions: detections.map((d) => ({ polygon: d.polygon!, box: d.box, score: d.score })) })),
      );
      const ms = performance.now() - t0;
      work.forEach(({ job, detections }, j) => {
        job.meta.timings.recognize = ms;
        const kept: Detection[] = [];
        detections.forEach((d, i) => {
          const line = lines[j]![i]!;
          if (line.text.length === 0 || line.score < this.minTextScore) return;
          d.text = line.text;
          d.text_score = line.score;
          kept.push(d);
        });
        job.meta.detections = kept;
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
    await this.recognizer.close();
  }
}
