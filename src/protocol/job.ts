import { Packr } from 'msgpackr';
import { isPartFile, readPart, type PartStore, type SharedPart } from '../transport/shared-parts.js';
import type { WireError } from './errors.js';
import { InternalError, toWireError } from './errors.js';
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
  /**
   * Same-host mode (`transport.shared_memory`): the ingest's shared directory, where parts named
   * in `shared` are the files `<job>.<part>`; set by ingest, absent when its first hop is remote.
   */
  shm?: string;
  /** Parts that ride in `shm` instead of as frames: name → its file there and size. */
  shared?: Partial<Record<PartName, SharedPart>>;
  /** Every file a stage wrote to `shm` for this job, kept to the end: ingest deletes just those when it answers. */
  written?: string[];
}

export interface Job {
  meta: JobMeta;
  /** Encoded image bytes as the client sent them. */
  image?: Buffer;
  /** Decoded pixels, see `meta.pixels`. */
  pixels?: Buffer;
  /** Parts still in shared memory, not read by this stage; see loadParts(). */
  shared?: Partial<Record<PartName, SharedPart>>;
  /**
   * Ingest only: the image (or raw pixels) is still the client's file `/dev/shm/<name>` (request
   * header `shm`); ingest takes it over when the job enters the pipeline (adoptClientFile).
   */
  clientFile?: { name: string; part: PartName; size: number };
}

const PART_NAMES: readonly PartName[] = ['image', 'pixels'];

/**
 * Buffers read from (or written to) shared memory: passed on by name, never written again. So a
 * processor that changes a part must put a new Buffer in its place, never write into this one
 * (every processor does: decoding, colour conversion and crops all make new buffers).
 */
const fromShared = new WeakMap<Buffer, SharedPart>();

// Internal hops use plain msgpack maps too: records would save a few bytes but tie the
// stages to one msgpackr version, and replicas of different versions may meet.
const packr = new Packr({ useRecords: false, moreTypes: false });

/**
 * The job's frames for the next hop. With `store` (the next hop is on this host and shared
 * memory is on) large parts go into the job's shared directory and only their names travel;
 * parts that came that way travel on by name. Without it every part rides as a frame,
 * read from shared memory first where needed: the next stage may be on another host.
 */
export function encodeJob(job: Job, store?: PartStore): Buffer[] {
  const meta = job.meta;
  const parts: PartName[] = [];
  const frames: Buffer[] = [];
  const shared: Partial<Record<PartName, SharedPart>> = {};
  if (!store) loadParts(job);
  for (const name of PART_NAMES) {
    const bytes = job[name];
    const known = bytes && store ? fromShared.get(bytes) : undefined;
    if (known) {
      shared[name] = known;
    } else if (bytes) {
      const file = store?.put(meta.shm, meta.job, name, bytes);
      if (file) {
        shared[name] = { file, size: bytes.length };
        fromShared.set(bytes, shared[name]);
        meta.written ??= [];
        if (!meta.written.includes(file)) meta.written.push(file);
      } else {
        parts.push(name);
        frames.push(bytes);
      }
    } else if (job.shared?.[name]) {
      shared[name] = job.shared[name];
    }
  }
  meta.parts = parts;
  if (Object.keys(shared).length > 0) meta.shared = shared;
  else delete meta.shared;
  return [packr.pack(meta), ...frames];
}

/**
 * encodeJob(), or when that fails (a shared part to send on as a frame is gone) the same job
 * failed with that error and without parts, which always encodes: the sink still answers the
 * client, and in broker mode the replica's credit comes back.
 */
export function encodeOrFail(job: Job, store?: PartStore): Buffer[] {
  try {
    return encodeJob(job, store);
  } catch (err) {
    job.meta.error = toWireError(err);
    dropParts(job);
    delete job.meta.pixels;
    return encodeJob(job);
  }
}

/**
 * Reads the job's parts that are still in shared memory into `job.image` / `job.pixels`.
 * Throws SharedMemoryError (the job fails, the stage goes on) if one cannot be read.
 */
export function loadParts(job: Job): void {
  const shared = job.shared;
  if (!shared) return;
  for (const name of PART_NAMES) {
    const part = shared[name];
    if (!part) continue;
    const bytes = readPart(job.meta.shm, job.meta.job, part);
    fromShared.set(bytes, part);
    job[name] = bytes;
    delete shared[name];
  }
  delete job.shared;
}

/** The job carries no image or pixels any more (a failed job, or one past the last stage that needs them). */
export function dropParts(job: Job): void {
  delete job.image;
  delete job.pixels;
  delete job.shared;
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
  if (meta.shared !== undefined) {
    if (meta.shared === null || typeof meta.shared !== 'object') throw new InternalError('job header field shared is not a map');
    const shared: Partial<Record<PartName, SharedPart>> = {};
    for (const [name, part] of Object.entries(meta.shared as Record<string, unknown>)) {
      const p = part as Partial<SharedPart> | null;
      if (!PART_NAMES.includes(name as PartName) || !p || typeof p.size !== 'number' || !isPartFile(p.file, meta.job)) {
        throw new InternalError(`job header names a bad shared part ${name}`);
      }
      shared[name as PartName] = { file: p.file, size: p.size };
    }
    job.shared = shared;
    delete meta.shared;
  }
  if (meta.written !== undefined && !(Array.isArray(meta.written) && meta.written.every((f) => isPartFile(f, meta.job)))) {
    throw new InternalError('job header field written is not a list of its part files');
  }
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
  /** The job's `written` files: in ingest's shared directory, to delete now. */
  shared?: string[];
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
  // Names of files ingest will delete: only this job's part files, whatever the wire says.
  if (meta.shared !== undefined) meta.shared = Array.isArray(meta.shared) ? meta.shared.filter((f) => isPartFile(f, meta.job)) : [];
  return { meta, reply: frames[1]! };
}
