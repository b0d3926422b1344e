import * as zmq from 'zeromq';
import { decodeReply, encodeHeader } from '../protocol/request.js';
import type { Reply } from '../protocol/types.js';
import { ClientTimeoutError, curveSocketOptions, type CurveClientOptions, type InferOptions } from './client.js';
import { sendPatiently } from '../transport/writer.js';

export interface ReqClientOptions extends CurveClientOptions {
  /** Time to wait for each attempt's reply, ms. */
  timeoutMs?: number;
  /** Attempts after the first one times out. */
  retries?: number;
}

/**
 * Request/reply, one at a time, with the Lazy Pirate pattern: a REQ socket whose reply never
 * came is stuck in its send/receive lock-step, so on timeout it is closed and a fresh one opened
 * before retrying. Rejects with ClientTimeoutError, naming the endpoint, when every attempt timed out.
 */
export class ReqClient {
  private socket: zmq.Request | undefined;
  private seq = 0;
  readonly timeoutMs: number;
  readonly retries: number;
  private readonly curve: object;

  constructor(
    readonly endpoint: string,
    options: ReqClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retries = options.retries ?? 2;
    this.curve = curveSocketOptions(options);
  }

  async infer(image: Buffer, options: InferOptions = {}): Promise<Reply> {
    const { timeoutMs = this.timeoutMs, ...fields } = options;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      const socket = this.open(timeoutMs);
      const id = ++this.seq;
      try {
        // A spurious EAGAIN (a pipe dropped under the send) must not count as a timed-out attempt.
        await sendPatiently(socket, [encodeHeader({ ...fields, id, timeout_ms: timeoutMs }), image]);
        const [frame] = await socket.receive();
        const reply = decodeReply(frame!);
        if (reply.id === id) return reply;
        // A REQ socket cannot get another request's reply; anything else is a broken peer.
        throw new Error(`reply for id ${String(reply.id)} to request ${id}`);
      } catch (err) {
        this.reset();
        if ((err as { code?: string }).code !== 'EAGAIN') throw err;
      }
    }
    throw new ClientTimeoutError(this.endpoint, timeoutMs * (this.retries + 1));
  }

  close(): void {
    this.reset();
  }

  private open(timeoutMs: number): zmq.Request {
    if (!this.socket) {
      this.socket = new zmq.Request({ linger: 0, ...this.curve });
      this.socket.connect(this.endpoint);
    }
    // Per attempt, since each call may have its own timeout. ZMQ_RCVTIMEO turns a missing reply
    // into EAGAIN instead of a receive that never returns; the extra 500 ms lets the pipeline's
    // own TIMEOUT reply (sent at the deadline) arrive before the client gives up.
    this.socket.receiveTimeout = timeoutMs + 500;
    this.socket.sendTimeout = timeoutMs;
    return this.socket;
  }

  private reset(): void {
    this.socket?.close();
    this.socket = undefined;
  }
}
