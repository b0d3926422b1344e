import { jobImage } from '../image/job-image.js';
import type { Job } from '../protocol/job.js';
import type { StageProcessor } from '../stage/processor.js';

/** Passes jobs through unchanged: the plumbing alone, for benchmarks and transport tests. */
export class NoopProcessor implements StageProcessor {
  constructor(
    readonly name: string,
    /** Decode the image anyway, so that bad images still get BAD_IMAGE in the noop profile. */
    private readonly decode: boolean,
    private readonly maxPixels: number,
    /** Fixed time per job, ms (a synthetic stage of known speed). */
    private readonly delayMs = 0,
  ) {}

  describe(): Record<string, unknown> {
    return { model: 'none', decode: this.decode, delay_ms: this.delayMs };
  }

  async process(job: Job): Promise<Job> {
    if (this.decode) {
      const img = await jobImage(job, this.maxPixels);
      job.meta.width = img.width;
      job.meta.height = img.height;
    }
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    job.meta.detections ??= [];
    return job;
  }

  async close(): Promise<void> {}
}
