import { encodeReply, errorReply } from '../protocol/request.js';
import { encodeResult, type Job } from '../protocol/job.js';
import type { Detection, OkReply, Reply } from '../protocol/types.js';
import type { StageProcessor } from './processor.js';
import { replyOrder } from '../image/reading-order.js';

/** What the sink sends: the reply, addressed to the ingest that holds the client. */
export interface SinkOutput {
  origin: string;
  frames: Buffer[];
}

/**
 * Draws the detections on the job's image: the pixels a stage kept for this purpose, or the
 * client's bytes decoded here when no stage decoded them (the noop profile).
 */
export async function annotateJob(job: Job, detections: Detection[], maxPixels: number): Promise<Buffer | undefined> {
  const [{ annotate }, { jobImage }] = await Promise.all([import('../image/annotate.js'), import('../image/job-image.js')]);
  if (!job.image && !job.pixels) return undefined;
  return annotate(await jobImage(job, maxPixels), detections);
}

type Annotator = (job: Job, detections: Detection[]) => Promise<Buffer | undefined>;

/**
 * The last stage: turns a finished job into the client's reply bytes (msgpack, or JSON for
 * imagezmq senders), so ingest forwards them without decoding anything.
 */
export class SinkProcessor implements StageProcessor<Job, SinkOutput> {
  readonly name = 'sink';
  constructor(private readonly annotator?: Annotator) {}

  describe(): Record<string, unknown> {
    return { annotate: this.annotator ? 'on request' : 'off' };
  }

  async process(job: Job): Promise<SinkOutput> {
    const meta = job.meta;
    let detections = replyOrder(meta.detections ?? []);
    if (meta.options.min_score !== undefined) detections = detections.filter((d) => d.score >= meta.options.min_score!);
    if (meta.options.max_detections !== undefined) detections = topByScore(detections, meta.options.max_detections);
    const reply: OkReply = {
      id: meta.id,
      ok: true,
      width: meta.width ?? 0,
      height: meta.height ?? 0,
      detections: detections.map(roundDetection),
      timings_ms: {},
    };
    if (meta.stream !== undefined) reply.stream = meta.stream;
    if (meta.frame !== undefined) reply.frame = meta.frame;
    if (meta.options.annotate && this.annotator) {
      const t0 = performance.now();
      const jpeg = await this.annotator(job, detections);
      if (jpeg) reply.annotated = jpeg;
      meta.timings.annotate = performance.now() - t0;
    }
    meta.timings.total = Date.now() - meta.accepted;
    reply.timings_ms = roundTimings(meta.timings);
    return this.address(job, reply, true);
  }

  /** A job that failed upstream (or here) becomes its error reply. */
  failure(job: Job): SinkOutput {
    const meta = job.meta;
    const error = meta.error ?? { code: 'INTERNAL' as const, message: 'job failed without an error' };
    return this.address(job, errorReply(meta.id, error, meta), false);
  }

  async close(): Promise<void> {}

  private address(job: Job, reply: Reply, ok: boolean): SinkOutput {
    const body = encodeReply(reply, job.meta.format ?? 'msgpack');
    const written = job.meta.written;
    return { origin: job.meta.origin, frames: encodeResult({ job: job.meta.job, ok, ...(written ? { shared: written } : {}) }, body) };
  }
}

function topByScore(detections: Detection[], n: number): Detection[] {
  if (detections.length <= n) return detections;
  const keep = new Set([...detections].sort((a, b) => b.score - a.score).slice(0, n));
  return detections.filter((d) => keep.has(d));
}

const r1 = (v: number) => Math.round(v * 10) / 10;
const r4 = (v: number) => Math.round(v * 1e4) / 1e4;

// Sub-pixel and 1e-16 digits are noise to a client and bloat every reply.
function roundDetection(d: Detection): Detection {
  const out: Detection = { ...d, box: [r1(d.box[0]), r1(d.box[1]), r1(d.box[2]), r1(d.box[3])], score: r4(d.score) };
  if (d.polygon) out.polygon = d.polygon.map(([x, y]) => [r1(x), r1(y)]);
  if (d.text_score !== undefined) out.text_score = r4(d.text_score);
  if (d.classes) out.classes = d.classes.map((c) => ({ label: c.label, score: r4(c.score) }));
  return out;
}

function roundTimings(t: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(t)) out[k] = Math.round(v * 100) / 100;
  return out;
}
