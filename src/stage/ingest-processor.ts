import { randomInt } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { TooLargeError } from '../protocol/errors.js';
import type { Job } from '../protocol/job.js';
import { parseRequest, type RequestSalvage } from '../protocol/request.js';
import { clientFileSize } from '../transport/shared-parts.js';
import type { StageProcessor } from './processor.js';

/** A client message as ingest's ROUTER delivers it, envelope split off. */
export interface ClientRequest {
  body: Buffer[];
  /** Filled as soon as the header's id and format are known, so even a failure is answered in kind. */
  salvage: RequestSalvage;
  /** Set by toJob when the header asks for latest-frame mode (ingest's business; not sent down the pipeline). */
  latest?: boolean;
}

/**
 * Ingest's processor: a client message becomes a job. It validates and stamps; the image bytes
 * pass through as they came (no decode, no copy) to the stage that needs pixels.
 */
export class IngestProcessor implements StageProcessor<ClientRequest, Job> {
  readonly name = 'ingest';
  /**
   * Job numbers start at a random point, not 1: a restarted ingest keeps its `origin` (a fixed
   * endpoint, or PID 1 in a container), so a result still travelling for the old process's job N
   * must not match the new process's job N. A random start in 2^47 makes that collision
   * practically impossible without a new field on every hop.
   */
  private seq = randomInt(2 ** 47);

  constructor(
    private readonly config: Config,
    /** This ingest's reply endpoint, as sinks reach it. */
    private readonly origin: string,
  ) {}

  describe(): Record<string, unknown> {
    const { max_inflight, max_message_bytes, latest_inflight } = this.config.limits;
    return { max_inflight, max_message_bytes, latest_inflight };
  }

  async process(request: ClientRequest): Promise<Job> {
    return this.toJob(request);
  }

  /** The synchronous core of process(): ingest calls it on its hot path without a promise. */
  toJob(request: ClientRequest): Job {
    const limits = this.config.limits;
    const { header, image, shm, raw, format } = parseRequest(
      request.body,
      { maxMessageBytes: limits.max_message_bytes, ...(this.config.transport.client_shared_memory ? { sharedFileSize: clientFileSize } : {}) },
      request.salvage,
    );
    const now = Date.now();
    const timeout = Math.min(header.timeout_ms ?? limits.default_timeout_ms, limits.max_timeout_ms);
    const job: Job = {
      meta: {
        job: ++this.seq,
        origin: this.origin,
        id: header.id,
        deadline: now + timeout,
        accepted: now,
        options: {},
        timings: {},
        parts: [],
      },
    };
    if (raw) {
      // Raw arrays go on as pixels: the stage that needs RGB converts them, once.
      if (raw.width * raw.height > limits.max_pixels) {
        throw new TooLargeError(`image is ${raw.width}×${raw.height} = ${raw.width * raw.height} pixels; the limit is ${limits.max_pixels}`);
      }
      job.meta.pixels = { width: raw.width, height: raw.height, channels: raw.channels, order: raw.order };
    }
    const part = raw ? 'pixels' : 'image';
    // A client's file stays where it is until the job enters the pipeline (a request answered
    // before that, OVERLOADED or SKIPPED, leaves it to the client).
    if (shm) job.clientFile = { name: shm.name, part, size: shm.size };
    else if (image) job[part] = image;
    if (format === 'json') job.meta.format = 'json';
    if (header.stream !== undefined) job.meta.stream = header.stream;
    if (header.frame !== undefined) job.meta.frame = header.frame;
    if (header.annotate !== undefined) job.meta.options.annotate = header.annotate;
    if (header.min_score !== undefined) job.meta.options.min_score = header.min_score;
    if (header.max_detections !== undefined) job.meta.options.max_detections = header.max_detections;
    if (header.latest) request.latest = true;
    return job;
  }

  async close(): Promise<void> {}
}
