import { isWatched } from '../dashboard/watched.js';
import { jobImage } from '../image/job-image.js';
import { dropParts, type Job } from '../protocol/job.js';
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
    /**
     * The last model stage (classify): like the real profiles' classify, it lets go of the
     * image unless the sink needs it to draw (annotate asked for, or a watched stream).
     */
    private readonly last = false,
  ) {}

  /** Without decode it never looks at the image: parts in shared memory pass on unread. */
  get readsParts(): boolean {
    return this.decode;
  }

  describe(): Record<string, unknown> {
    return { model: 'none', decode: this.decode, delay_ms: this.delayMs };
  }

  async process(job: Job): Promise<Job> {
    const size = await this.size(job);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    return this.finish(job, size);
  }

  /**
   * A synthetic batched model: one `delay_ms` for the whole batch, as one inference call would
   * take for all of it. A bad image fails only its own job.
   */
  async processBatch(jobs: Job[]): Promise<PromiseSettledResult<Job>[]> {
    const sizes = await Promise.allSettled(jobs.map((job) => this.size(job)));
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    return sizes.map((s, i) => (s.status === 'rejected' ? s : { status: 'fulfilled', value: this.finish(jobs[i]!, s.value) }));
  }

  private async size(job: Job): Promise<{ width: number; height: number } | undefined> {
    if (!this.decode) return undefined;
    const img = await jobImage(job, this.maxPixels);
    return { width: img.width, height: img.height };
  }

  private finish(job: Job, size: { width: number; height: number } | undefined): Job {
    if (size) {
      job.meta.width = size.width;
      job.meta.height = size.height;
    }
    job.meta.detections ??= [];
    if (this.last && !job.meta.options.annotate && !isWatched(job.meta.stream)) {
      dropParts(job);
      delete job.meta.pixels;
    }
    return job;
  }

  async close(): Promise<void> {}
}
