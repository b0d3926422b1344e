/**
 * Error codes of protocol v1. They are part of the wire contract: clients (the Python client
 * mirrors this list) switch on them, so a code is never renamed or reused.
 */
export const ErrorCode = {
  BAD_REQUEST: 'BAD_REQUEST',
  BAD_IMAGE: 'BAD_IMAGE',
  TOO_LARGE: 'TOO_LARGE',
  TIMEOUT: 'TIMEOUT',
  OVERLOADED: 'OVERLOADED',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The `error` member of a failure reply. */
export interface WireError {
  code: ErrorCode;
  message: string;
}

/** Base class: every failure that can reach a client is a FramepipeError with a stable code. */
export class FramepipeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'FramepipeError';
  }
  toWire(): WireError {
    return { code: this.code, message: this.message };
  }
}

/** The request is not protocol v1: not msgpack, header not a map, wrong field types, no image. */
export class BadRequestError extends FramepipeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.BAD_REQUEST, message, options);
    this.name = 'BadRequestError';
  }
}

/** The image bytes are not a decodable image (unknown format, truncated, corrupt). */
export class BadImageError extends FramepipeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.BAD_IMAGE, message, options);
    this.name = 'BadImageError';
  }
}

/** The message or the image exceeds a configured limit (bytes or pixels). */
export class TooLargeError extends FramepipeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.TOO_LARGE, message, options);
    this.name = 'TooLargeError';
  }
}

/** The request's deadline passed before its result was ready. */
export class TimeoutError extends FramepipeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.TIMEOUT, message, options);
    this.name = 'TimeoutError';
  }
}

/** The pipeline holds as much work as it is allowed to; the client should back off. */
export class OverloadedError extends FramepipeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.OVERLOADED, message, options);
    this.name = 'OverloadedError';
  }
}

/** A bug or an unexpected failure inside a stage (the message says which). */
export class InternalError extends FramepipeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.INTERNAL, message, options);
    this.name = 'InternalError';
  }
}

/**
 * A part of a job that should be in shared memory (`transport.shared_memory`) is missing, the
 * wrong size or named outside framepipe's directories: a stage runs on another host than the
 * ingest that wrote it, or the request was already answered (its files released).
 */
export class SharedMemoryError extends FramepipeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.INTERNAL, message, options);
    this.name = 'SharedMemoryError';
  }
}

/** Turns anything thrown into a wire error, keeping coded errors as they are. */
export function toWireError(err: unknown): WireError {
  if (err instanceof FramepipeError) return err.toWire();
  const message = err instanceof Error ? err.message : String(err);
  return { code: ErrorCode.INTERNAL, message: `internal error: ${message}` };
}
