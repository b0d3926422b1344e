import type { LiveFrames } from '../dashboard/live-frames.js';
import type { Job } from '../protocol/job.js';
import type { StageProcessor } from '../stage/processor.js';
import type { SinkOutput, SinkProcessor } from '../stage/sink-processor.js';
import { meters, observeReply } from './meters.js';

/**
 * The sink's processor with its observers: replies by code, per-step and end-to-end times,
 * and the live view's frames. With metrics off and nobody watching it adds two checks per job.
 */
export class ObservedSink implements StageProcessor<Job, SinkOutput> {
  readonly name = 'sink';
  private readonly m = meters();

  constructor(
    private readonly inner: SinkProcessor,
    private readonly live?: LiveFrames,
  ) {}

  describe(): Record<string, unknown> {
    return this.inner.describe();
  }

  async process(job: Job): Promise<SinkOutput> {
    const out = await this.inner.process(job);
    if (this.m) observeReply(this.m, job.meta, 'OK');
    this.live?.offer(job);
    return out;
  }

  failure(job: Job): SinkOutput {
    if (this.m) observeReply(this.m, job.meta, job.meta.error?.code ?? 'INTERNAL');
    return this.inner.failure(job);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
