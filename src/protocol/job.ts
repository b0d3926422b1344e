import { Packr } from 'msgpackr';
import type { WireError } from './errors.js';
import { InternalError } from './errors.js';
import type { Detection, RequestOptions } from './types.js';

/**
 * The internal wire format between stages. Frame 0 is a msgpack map (JobMeta); each name in
 * `meta.parts` is one more frame, in order. Binary payloads ride as their own frames so that
 * nobody re-encodes megabytes of pixels inside msgpack.
 */
export type PartName = 'image' | 'pixels';

/**
 * Layout of a `pixels` frame: interleaved uint8, row-major, no padding. Stages past the first
 * decode always hold RGB; `order` is only other than 'rgb' for raw frames straight from a client.
 */
export interface PixelsInfo {
  width: number;
  height: number;
  channels: 1 | 3;
  order?: 'rgb' | 'bgr' | 'gray';
}

export interface JobMeta {
  /** Ingest-local sequence number; with `origin` it names the request uniquely. */
  job: number;
  /** Endpoint of the ingest process that holds the client's connection (its reply socket). */
  origin: string;
  /** The client's id, echoed back unchanged. */
  id: string | number | null;
  /** Absolute deadline, epoch milliseconds. */
  deadline: number;
  /** When ingest accepted the request, epoch milliseconds. */
  accepted: number;
  stream?: string;
  frame?: number;
  options: RequestOptions;
  /** Size of the original image (after EXIF rotation), set by the stage that decodes it. */
  width?: number;
  height?: number;
  pixels?: PixelsInfo;
  detections?: Detection[];
  /** Milliseconds spent per stage (and per step inside a stage); `<stage>_wait` is the time the job spent queued or in transit before that stage took it. */
  timings: Record<string, number>;
  /** When the previous stage let go of the job, epoch milliseconds with a fraction: the start of the next `<stage>_wait`. */
  handoff?: number;
  /** Set by the stage that failed; later stages pass the job on untouched. */
  error?: WireError;
  /** Reply encoding the client expects: msgpack (protocol v1) or json (imagezmq senders). */
  format?: 'msgpack' | 'json';
  parts: PartName[];
}

export interface Job {
  meta: JobMeta;
  /** Encoded image bytes as the client sent them. */
  image?: Buffer;
  /** Decoded pixels, see `meta.pixels`. */
  pixels?: Buffer;
}

// Internal hops use plain msgpack maps too: records would save a few bytes but tie the
// stages to one msgpackr version, and replicas of different versions may meet.
const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeJob(job: Job): Buffer[] {
  const parts: PartName[] = [];
  const frames: Buffer[] = [];
  if (job.image) {
    parts.push('image');
    frames.push(job.image);
  }
  if (job.pixels) {
    parts.push('pixels');
    frames.push(job.pixels);
  }
  job.meta.parts = parts;
  return [packr.pack(job.meta), ...frames];
}

/** Epoch milliseconds with sub-millisecond resolution: hop waits are often well under 1 ms. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export function decodeJob(frames: Buffer[]): Job {
  if (frames.length === 0) throw new InternalError('empty job message');
  let meta: JobMeta;
  try {
    meta = packr.unpack(frames[0]!) as JobMeta;
  } catch (err) {
    throw new InternalError('job header is not msgpack', { cause: err });
  }
  if (meta === null || typeof meta !== 'object' || typeof meta.job !== 'number' || typeof meta.origin !== 'string') {
    throw new InternalError('job header lacks job/origin');
  }
  const parts = Array.isArray(meta.parts) ? meta.parts : [];
  if (parts.length !== frames.length - 1) {
    throw new InternalError(`job declares ${parts.length} parts but carries ${frames.length - 1}`);
  }
  const job: Job = { meta };
  parts.forEach((name, i) => {
    if (name === 'image') job.image = frames[i + 1];
    else if (name === 'pixels') job.pixels = frames[i + 1];
    else throw new InternalError(`unknown job part ${String(name)}`);
  });
  meta.timings ??= {};
  return job;
}

/** Sink → ingest: which request it answers, then the reply bytes exactly as the client gets them. */
export interface ResultMeta {
  job: number;
  ok: boolean;
}

export function encodeResult(meta: ResultMeta, reply: Buffer): Buffer[] {
  return [packr.pack(meta), reply];
}

export function decodeResult(frames: Buffer[]): { meta: ResultMeta; reply: Buffer } {
  if (frames.length !== 2) throw new InternalError(`result has ${frames.length} frames, expected 2`);
  const meta = packr.unpack(frames[0]!) as ResultMeta;
  if (meta === null || typeof meta !== 'object' || typeof meta.job !== 'number') {
    throw new InternalError('result header lacks job');
  }
  return { meta, reply: frames[1]! };
}
