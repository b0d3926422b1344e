import { Packr, Unpackr } from 'msgpackr';
import { z } from 'zod';
import { BadRequestError, TooLargeError, type WireError } from './errors.js';
import type { Reply, RequestHeader } from './types.js';

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
});

const requestUnpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });
// Replies must be plain msgpack that Python's msgpack.unpackb reads with default options:
// no records, no structures, no extension types.
const replyPackr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });

export interface ParsedRequest {
  header: RequestHeader;
  image: Buffer;
}

export interface RequestLimits {
  maxMessageBytes: number;
}

/** The id a failure reply should echo, recovered from whatever part of the header did parse. */
export function salvageId(raw: unknown): string | number | null {
  if (raw && typeof raw === 'object' && !Array.isArray(raw) && 'id' in raw) {
    const id = (raw as { id: unknown }).id;
    if (typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))) return id;
  }
  return null;
}

/** Throws BadRequestError / TooLargeError with a message that names the problem. `idOut` gets the id as soon as it is known. */
export function parseRequest(body: Buffer[], limits: RequestLimits, idOut?: { id: string | number | null }): ParsedRequest {
  if (body.length === 0) throw new BadRequestError('empty request: expected [header, image?]');
  if (body.length > 2) throw new BadRequestError(`request has ${body.length} frames: expected [header, image?]`);
  const size = body.reduce((n, f) => n + f.length, 0);
  let raw: unknown;
  try {
    raw = requestUnpackr.unpack(body[0]!);
  } catch (err) {
    throw new BadRequestError('header (frame 1) is not msgpack', { cause: err });
  }
  if (idOut) idOut.id = salvageId(raw);
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
  if (frameImage !== undefined) {
    if (h.image !== undefined) throw new BadRequestError("image given twice: both frame 2 and header field 'image'");
    image = frameImage;
  } else if (h.image !== undefined) {
    image = Buffer.from(h.image.buffer, h.image.byteOffset, h.image.byteLength);
  }
  if (!image || image.length === 0) throw new BadRequestError("no image: send it as frame 2 or in header field 'image'");
  const header: RequestHeader = { id: h.id ?? null };
  if (h.stream !== undefined) header.stream = h.stream;
  if (h.frame !== undefined) header.frame = h.frame;
  if (h.timeout_ms !== undefined) header.timeout_ms = h.timeout_ms;
  if (h.annotate !== undefined) header.annotate = h.annotate;
  if (h.min_score !== undefined) header.min_score = h.min_score;
  if (h.max_detections !== undefined) header.max_detections = h.max_detections;
  return { header, image };
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

/** For clients (CLI, tests, benchmarks): decode a reply frame. */
export function decodeReply(frame: Buffer): Reply {
  return requestUnpackr.unpack(frame) as Reply;
}

/** For clients: encode a request header. */
export function encodeHeader(header: Record<string, unknown>): Buffer {
  return replyPackr.pack(header);
}
