import * as zmq from 'zeromq';
import { decodeReply, encodeHeader } from '../protocol/request.js';
import type { Reply, RequestOptions } from '../protocol/types.js';
import { ClientFiles } from '../transport/shared-parts.js';
import { SocketWriter } from '../transport/writer.js';

/**
 * CURVE keys (Z85, 40 characters) for a pipeline with `security.curve` on: the server's public key
 * and this client's key pair (`framepipe keygen`). All three or none.
 */
export interface CurveClientOptions {
  curveServerKey?: string;
  curvePublicKey?: string;
  curveSecretKey?: string;
}

/** ZMQ_CURVE_SERVERKEY / PUBLICKEY / SECRETKEY socket options, or none; half a set is an error. */
export function curveSocketOptions(o: CurveClientOptions): { curveServerKey: string; curvePublicKey: string; curveSecretKey: string } | object {
  const given = [o.curveServerKey, o.curvePublicKey, o.curveSecretKey].filter((k) => k !== undefined && k !== '').length;
  if (given === 0) return {};
  if (given !== 3) throw new Error('CURVE needs curveServerKey, curvePublicKey and curveSecretKey together');
  return { curveServerKey: o.curveServerKey!, curvePublicKey: o.curvePublicKey!, curveSecretKey: o.curveSecretKey! };
}

export interface ClientOptions extends CurveClientOptions {
  /** Per-request time limit, ms, on the client side (the pipeline's deadline is sent along). */
  timeoutMs?: number;
  /** Requests in flight at most; infer() waits for a free slot beyond that. */
  window?: number;
  /**
   * Same host as ingest: write each image to /dev/shm and send only its name (request header
   * `shm`, docs/protocol.md), so the bytes never cross the socket; the files live in a private
   * directory of this client, removed by close(). An image that cannot be written (/dev/shm
   * full) goes in the message as usual. Default false.
   */
  sharedMemory?: boolean;
}

export interface InferOptions extends RequestOptions {
  stream?: string;
  frame?: number;
  /**
   * Latest-frame mode for `stream` (required with it): if newer frames of the stream arrive while
   * this one waits at ingest, this one resolves with a SKIPPED reply (`isSkipped(reply)`), not an error.
   */
  latest?: boolean;
  /** Overrides the client's timeoutMs for this request. */
  timeoutMs?: number;
}

/** The client gave up waiting; the request may still complete in the pipeline. */
export class ClientTimeoutError extends Error {
  readonly code = 'TIMEOUT';
  constructor(
    readonly endpoint: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply from ${endpoint} within ${timeoutMs} ms`);
    this.name = 'ClientTimeoutError';
  }
}

/**
 * A pipelined DEALER client: many requests in flight on one connection, each matched to its
 * reply by id. A DEALER never gets stuck the way a REQ does after a lost reply, so a timeout
 * costs one request, not the connection.
 */
export class Client {
  private readonly socket: zmq.Dealer;
  private readonly writer: SocketWriter;
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; file?: string }>();
  private readonly slots: (() => void)[] = [];
  private seq = 0;
  private closed = false;
  private readonly loop: Promise<void>;
  readonly timeoutMs: number;
  readonly window: number;
  /** With `sharedMemory`: this client's directory of image files in /dev/shm. */
  private readonly files?: ClientFiles;

  constructor(
    readonly endpoint: string,
    options: ClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.window = options.window ?? 64;
    if (options.sharedMemory) this.files = new ClientFiles();
    this.socket = new zmq.Dealer({ linger: 0, sendHighWaterMark: 10_000, receiveHighWaterMark: 10_000, ...curveSocketOptions(options) });
    this.socket.connect(endpoint);
    this.writer = new SocketWriter(this.socket, Number.MAX_SAFE_INTEGER);
    this.loop = this.receive();
  }

  get inflight(): number {
    return this.waiting.size;
  }

  /**
   * Sends one image (encoded bytes) and resolves with its reply, ok or not (SKIPPED included, in
   * latest-frame mode). Rejects only on a client-side timeout or close.
   */
  async infer(image: Buffer, options: InferOptions = {}): Promise<Reply> {
    while (!this.closed && this.waiting.size >= this.window) await new Promise<void>((r) => this.slots.push(r));
    if (this.closed) throw new Error('client is closed');
    const id = ++this.seq;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const { timeoutMs: _t, ...fields } = options;
    // Could not be written (/dev/shm full): the image goes as a frame instead.
    const file = this.files?.write(image);
    const header = encodeHeader({ ...fields, id, timeout_ms: timeoutMs, ...(file ? { shm: file } : {}) });
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(id);
        reject(new ClientTimeoutError(this.endpoint, timeoutMs));
      }, timeoutMs + 250);
      this.waiting.set(id, { resolve, reject, timer, ...(file ? { file } : {}) });
      this.writer.send(file ? [Buffer.alloc(0), header] : [Buffer.alloc(0), header, image]).catch((err: Error) => {
        this.settle(id);
        reject(err);
      });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [id, w] of this.waiting) {
      this.settle(id);
      w.reject(new Error('client closed'));
    }
    // Wake everyone still waiting for a free slot: they see `closed` and reject.
    for (const wake of this.slots.splice(0)) wake();
    this.writer.close();
    this.socket.close();
    // Files ingest has not taken by now never will be (their requests were given up).
    this.files?.close();
    await this.loop.catch(() => {});
  }

  /** Done with request `id`; `reply` when it was answered. */
  private settle(id: number, reply?: Reply) {
    const w = this.waiting.get(id);
    if (!w) return undefined;
    clearTimeout(w.timer);
    this.waiting.delete(id);
    // A file ingest did not take over is ours to remove. An ok reply means it did (the job went
    // through the pipeline), and skipping the unlink that would fail saves a syscall and an Error.
    if (w.file && !reply?.ok) this.files?.remove(w.file);
    this.slots.shift()?.();
    return w;
  }

  private async receive(): Promise<void> {
    for await (const frames of this.socket) {
      const body = frames[frames.length - 1];
      if (!body) continue;
      let reply: Reply;
      try {
        reply = decodeReply(body);
      } catch {
        continue;
      }
      if (typeof reply.id !== 'number') continue;
      this.settle(reply.id, reply)?.resolve(reply);
    }
  }
}
