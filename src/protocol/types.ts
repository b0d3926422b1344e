import type { WireError } from './errors.js';

/** Axis-aligned box in pixels of the original image: [x1, y1, x2, y2]. */
export type Box = [number, number, number, number];
/** A point [x, y] in pixels of the original image. */
export type Point = [number, number];

/** One classifier guess. */
export interface ClassScore {
  label: string;
  score: number;
}

/** One thing found in an image, as it appears in a reply. */
export interface Detection {
  box: Box;
  score: number;
  label: string;
  /** Text regions: the 4 corners, clockwise from top-left of the text line. */
  polygon?: Point[];
  text?: string;
  text_score?: number;
  /** Top-k of a classifier run on this detection's crop. */
  classes?: ClassScore[];
}

/** Success reply of protocol v1. */
export interface OkReply {
  id: string | number | null;
  ok: true;
  width: number;
  height: number;
  detections: Detection[];
  timings_ms: Record<string, number>;
  stream?: string;
  frame?: number;
  /** Annotated JPEG, only when the request asked for `annotate: true`. */
  annotated?: Uint8Array;
}

/** Failure reply of protocol v1. */
export interface ErrorReply {
  id: string | number | null;
  ok: false;
  error: WireError;
  stream?: string;
  frame?: number;
}

/**
 * The status of latest-frame mode's skipped frames. Deliberately not an ErrorCode: a skipped
 * frame is the mode working as asked, not a failure (metrics count it apart from errors).
 */
export const SKIPPED = 'SKIPPED';

/** Latest-frame mode: this frame was replaced by a newer one of its stream before it was processed. */
export interface SkippedReply {
  id: string | number | null;
  ok: false;
  skipped: true;
  /** `code` is always SKIPPED; present so that clients which only know `error.code` see a code. */
  error: { code: typeof SKIPPED; message: string };
  stream: string;
  frame?: number;
  /** The newer request that took this frame's place (its id, and its frame number when sent). */
  superseded_by: { id: string | number | null; frame?: number };
}

export type Reply = OkReply | ErrorReply | SkippedReply;

/** Per-request options a client may set in the header. Unknown keys are ignored. */
export interface RequestOptions {
  /** Return an annotated JPEG in the reply. */
  annotate?: boolean;
  /** Drop detections below this score (sink-side filter, on top of the model's thresholds). */
  min_score?: number;
  /** Keep at most this many detections (highest score first). */
  max_detections?: number;
}

/** The validated request header (frame 1 of a client request). */
export interface RequestHeader extends RequestOptions {
  id: string | number | null;
  stream?: string;
  frame?: number;
  timeout_ms?: number;
  /** Latest-frame mode for this frame's stream (needs `stream`): older waiting frames get SKIPPED. */
  latest?: boolean;
}
