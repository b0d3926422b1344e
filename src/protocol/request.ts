import { Packr, Unpackr } from 'msgpackr';
import { z } from 'zod';
import { BadRequestError, TooLargeError, type WireError } from './errors.js';
import { SKIPPED, type Reply, type RequestHeader, type SkippedReply } from './types.js';

/**
 * Client ↔ ingest, protocol v1 (docs/protocol.md is the contract; keep the two in step).
 * Body = [header, image?] after the routing envelope. The header is a msgpack map; the image is
 * frame 2 or, without it, the header's `image` field (bin).
 */

// Bin fields arrive as Buffer/Uint8Array. Python's msgpack sends str as str and bytes as bin.
const binary = z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'must be bytes (msgpack bin)' });

const headerSchema = z.object({
  id: z.union([z.string().max(256), z.number().int().safe()]).nullish(),
  image: binary.optional(),
  stream: z.string().max(256).optional(),
  frame: z.number().int().nonnegative().safe().optional(),
  timeout_ms: z.number().int().positive().optional(),
  annotate: z.boolean().optional(),
  min_score: z.number().min(0).max(1).optional(),
  max_detections: z.number().int().positive().optional(),
  // Latest-frame mode for this frame's stream (docs/protocol.md "Latest-frame mode"); needs `stream`.
  latest: z.boolean().optional(),
  // Raw frames: frame 2 holds an uncompressed uint8 array instead of an encoded image.
  shape: z.array(z.number().int().positive().safe()).min(2).max(3).optional(),
  dtype: z.literal('uint8', { message: "only 'uint8' is supported" }).optional(),
  pixels: z.enum(['bgr', 'rgb', 'gray']).optional(),
  // The image is a file in /dev/shm that the client wrote (same host); ingest takes it over.
  shm: z.string().max(256).optional(),
});

/** imagezmq's ImageSender header: {"msg": NAME} for JPEG, plus dtype and shape for a raw array. */
const imagezmqSchema = z.object({
  msg: z.string().max(256).optional(),
  dtype: z.string().optional(),
  shape: z.array(z.number().int().positive().safe()).min(2).max(3).optional(),
});

const requestUnpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });
// Replies must be plain msgpack that Python's msgpack.unpackb reads with default options:
// no records, no structures, no extension types.
const replyPackr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });

/** Layout of a raw frame as the client sent it. */
export interface RawLayout {
  width: number;
  height: number;
  channels: 1 | 3;
  order: 'bgr' | 'rgb' | 'gray';
}

export interface ParsedRequest {
  header: RequestHeader;
  /** Encoded image bytes, or the raw array when `raw` is set; absent when `shm` names a file instead. */
  image?: Buffer;
  /** The client's file in /dev/shm holding those bytes (header `shm`), and its size. */
  shm?: { name: string; size: number };
  raw?: RawLayout;
  /** msgpack for protocol v1 clients, json for imagezmq senders. */
  format: 'msgpack' | 'json';
}

/** What the caller learns about a request even when it fails, to shape the error reply. */
export interface RequestSalvage {
  id: string | number | null;
  format: 'msgpack' | 'json';
}

export interface RequestLimits {
  maxMessageBytes: number;
  /**
   * The size of the client file a header's `shm` names, throwing BadRequestError when it may not
   * be taken (ingest passes clientFileSize). Absent: requests with `shm` are refused.
   */
  sharedFileSize?: (name: string) => number;
}

/** The id a failure reply should echo, recovered from whatever part of the header did parse. */
export function salvageId(raw: unknown): string | number | null {
  if (raw && typeof raw === 'object' && !Array.isArray(raw) && 'id' in raw) {
    const id = (raw as { id: unknown }).id;
    if (typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))) return id;
  }
  return null;
}

/**
 * Throws BadRequestError / TooLargeError with a message that names the problem. `salvage` learns
 * the id and reply format as soon as they are known, so even a failure is answered in kind.
 */
export function parseRequest(body: Buffer[], limits: RequestLimits, salvage?: RequestSalvage): ParsedRequest {
  if (body.length === 0) throw new BadRequestError('empty request: expected [header, image?]');
  if (body.length > 2) throw new BadRequestError(`request has ${body.length} frames: expected [header, image?]`);
  const size = body.reduce((n, f) => n + f.length, 0);
  // imagezmq senders put a JSON object in frame 1; '{' (0x7b) is never the start of a msgpack map.
  if (body[0]![0] === 0x7b) {
    if (salvage) salvage.format = 'json';
    return parseImagezmq(body, size, limits, salvage);
  }
  let raw: unknown;
  try {
    raw = requestUnpackr.unpack(body[0]!);
  } catch (err) {
    throw new BadRequestError('header (frame 1) is not msgpack', { cause: err });
  }
  if (salvage) salvage.id = salvageId(raw);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || raw instanceof Uint8Array) {
    throw new BadRequestError('header (frame 1) must be a msgpack map');
  }
  if (size > limits.maxMessageBytes) {
    throw new TooLargeError(`message is ${size} bytes; the limit is ${limits.maxMessageBytes}`);
  }
  const result = headerSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.join('.') || 'header';
    throw new BadRequestError(`header field '${field}': ${issue.message}`);
  }
  const h = result.data;
  const frameImage = body[1];
  let image: Buffer | undefined;
  let shm: ParsedRequest['shm'];
  if (h.shm !== undefined) {
    if (frameImage !== undefined || h.image !== undefined) throw new BadRequestError("image given twice: header field 'shm' and frame 2 or field 'image'");
    if (!limits.sharedFileSize) throw new BadRequestError("header field 'shm': this ingest takes no images from shared memory (transport.client_shared_memory is off); send the image as frame 2");
    const bytes = limits.sharedFileSize(h.shm);
    if (bytes === 0) throw new BadRequestError(`header field 'shm': the file ${h.shm} is empty`);
    if (size + bytes > limits.maxMessageBytes) throw new TooLargeError(`request is ${size + bytes} bytes with its image file; the limit is ${limits.maxMessageBytes}`);
    shm = { name: h.shm, size: bytes };
  } else if (frameImage !== undefined) {
    if (h.image !== undefined) throw new BadRequestError("image given twice: both frame 2 and header field 'image'");
    image = frameImage;
  } else if (h.image !== undefined) {
    image = Buffer.from(h.image.buffer, h.image.byteOffset, h.image.byteLength);
  }
  const imageBytes = shm?.size ?? image?.length ?? 0;
  if (imageBytes === 0) throw new BadRequestError("no image: send it as frame 2, in header field 'image', or name its file in 'shm'");
  const header: RequestHeader = { id: h.id ?? null };
  if (h.stream !== undefined) header.stream = h.stream;
  if (h.frame !== undefined) header.frame = h.frame;
  if (h.timeout_ms !== undefined) header.timeout_ms = h.timeout_ms;
  if (h.annotate !== undefined) header.annotate = h.annotate;
  if (h.min_score !== undefined) header.min_score = h.min_score;
  if (h.max_detections !== undefined) header.max_detections = h.max_detections;
  if (h.latest === true) {
    if (h.stream === undefined) throw new BadRequestError("header field 'latest': needs 'stream' (latest-frame mode is per stream)");
    header.latest = true;
  }
  const parsed: ParsedRequest = { header, format: 'msgpack' };
  if (image) parsed.image = image;
  if (shm) parsed.shm = shm;
  if (h.shape !== undefined) parsed.raw = rawLayout(h.shape, h.pixels, imageBytes);
  else if (h.dtype !== undefined || h.pixels !== undefined) throw new BadRequestError("header fields 'dtype'/'pixels' need 'shape' (raw frames)");
  return parsed;
}

function parseImagezmq(body: Buffer[], size: number, limits: RequestLimits, salvage?: RequestSalvage): ParsedRequest {
  let json: unknown;
  try {
    json = JSON.parse(body[0]!.toString('utf8'));
  } catch (err) {
    throw new BadRequestError('header (frame 1) starts with { but is not JSON', { cause: err });
  }
  // `msg` is the reply's id: a failure echoes it too, like a protocol v1 id.
  if (salvage && json !== null && typeof json === 'object' && typeof (json as { msg?: unknown }).msg === 'string') {
    salvage.id = (json as { msg: string }).msg;
  }
  const result = imagezmqSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new BadRequestError(`imagezmq header field '${issue.path.join('.') || 'header'}': ${issue.message}`);
  }
  if (size > limits.maxMessageBytes) throw new TooLargeError(`message is ${size} bytes; the limit is ${limits.maxMessageBytes}`);
  const image = body[1];
  if (!image || image.length === 0) throw new BadRequestError('no image: imagezmq sends it as frame 2');
  const h = result.data;
  const header: RequestHeader = { id: h.msg ?? null };
  if (h.msg !== undefined) header.stream = h.msg;
  const parsed: ParsedRequest = { header, image, format: 'json' };
  if (h.shape !== undefined) {
    if (h.dtype !== 'uint8') throw new BadRequestError(`imagezmq dtype '${h.dtype}': only 'uint8' is supported`);
    // send_image sends OpenCV arrays: BGR, or one plane for grayscale.
    parsed.raw = rawLayout(h.shape, undefined, image.length);
  }
  return parsed;
}

function rawLayout(shape: number[], pixels: 'bgr' | 'rgb' | 'gray' | undefined, bytes: number): RawLayout {
  const [height, width, c = 1] = shape as [number, number, number?];
  if (c !== 1 && c !== 3) throw new BadRequestError(`shape ${JSON.stringify(shape)}: channels must be 1 or 3`);
  const order = pixels ?? (c === 1 ? 'gray' : 'bgr');
  if ((order === 'gray') !== (c === 1)) throw new BadRequestError(`pixels '${order}' does not fit shape ${JSON.stringify(shape)}`);
  if (width * height * c !== bytes) {
    throw new BadRequestError(`shape ${JSON.stringify(shape)} needs ${width * height * c} bytes of uint8, the image has ${bytes}`);
  }
  return { width, height, channels: c, order };
}

export function encodeReply(reply: Reply, format: 'msgpack' | 'json' = 'msgpack'): Buffer {
  if (format === 'json') {
    return Buffer.from(JSON.stringify(reply, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)));
  }
  return replyPackr.pack(reply);
}

export function errorReply(
  id: string | number | null,
  error: WireError,
  extra?: { stream?: string; frame?: number },
): Reply {
  const reply: Reply = { id, ok: false, error };
  if (extra?.stream !== undefined) reply.stream = extra.stream;
  if (extra?.frame !== undefined) reply.frame = extra.frame;
  return reply;
}

/**
 * Latest-frame mode: the reply to a frame that a newer frame of its stream replaced before it
 * entered the pipeline. Not an error, but `ok: false` (it has no detections) with an `error` whose
 * code is SKIPPED, so a client that predates it sees a coded non-result rather than a malformed reply.
 */
export function skippedReply(
  skipped: { id: string | number | null; stream: string; frame?: number },
  newer: { id: string | number | null; frame?: number },
): SkippedReply {
  const by: SkippedReply['superseded_by'] = { id: newer.id };
  if (newer.frame !== undefined) by.frame = newer.frame;
  const which = newer.frame !== undefined ? `frame ${newer.frame}` : `request ${JSON.stringify(newer.id)}`;
  const reply: SkippedReply = {
    id: skipped.id,
    ok: false,
    skipped: true,
    error: { code: SKIPPED, message: `skipped: ${which} of stream ${JSON.stringify(skipped.stream)} is newer` },
    stream: skipped.stream,
    superseded_by: by,
  };
  if (skipped.frame !== undefined) reply.frame = skipped.frame;
  return reply;
}

/** Whether a reply is latest-frame mode's SKIPPED (a newer frame of the stream was processed instead). */
export function isSkipped(reply: Reply): reply is SkippedReply {
  return reply.ok === false && 'skipped' in reply && reply.skipped === true;
}

/** For clients (CLI, tests, benchmarks): decode a reply frame. */
export function decodeReply(frame: Buffer): Reply {
  return requestUnpackr.unpack(frame) as Reply;
}

/** For clients: encode a request header. */
export function encodeHeader(header: Record<string, unknown>): Buffer {
  return replyPackr.pack(header);
}
