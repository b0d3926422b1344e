import type * as zmq from 'zeromq';
import { packMessages } from './coalesce.js';

/**
 * The single writer of one socket. zeromq.js allows one pending send() per socket (a second
 * throws EBUSY, zeromq.js #381/#427), so all senders queue here and one loop feeds the socket.
 * The queue is bounded: `offer` refuses when full (ingest turns that into OVERLOADED), `send`
 * waits for its turn (stages use it to pass back-pressure upstream).
 *
 * With `coalesce` > 1 (stage-to-stage sockets whose readers split batches, see coalesce.ts) the
 * first message of an event-loop turn goes at once and the pump then waits for the turn to end:
 * whatever the rest of the turn queued goes as one message of up to `coalesce`. One request at
 * a time is never delayed; a busy stage sends a burst with one wake-up of its peer.
 */
export class SocketWriter {
  private readonly queue: { frames: Buffer[]; done: (err?: unknown) => void }[] = [];
  private pumping = false;
  private closed = false;

  constructor(
    private readonly socket: zmq.Writable,
    /** Messages waiting here at most (on top of the socket's own ZMQ_SNDHWM). */
    readonly capacity: number,
    /** Messages sent together at most (1: each on its own). */
    private readonly coalesce = 1,
  ) {}

  get length(): number {
    return this.queue.length;
  }

  /** Queues the message unless the queue is full; never waits. */
  offer(frames: Buffer[]): boolean {
    if (this.closed || this.queue.length >= this.capacity) return false;
    this.enqueue(frames, () => {});
    return true;
  }

  /** Resolves once the socket has taken the message; rejects if it could not be sent. */
  send(frames: Buffer[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('writer closed'));
    return new Promise((resolve, reject) => this.enqueue(frames, (err) => (err ? reject(err) : resolve())));
  }

  /** Resolves when everything queued so far has been handed to the socket, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while ((this.queue.length > 0 || this.pumping) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.queue.length === 0 && !this.pumping;
  }

  close(): void {
    this.closed = true;
  }

  private enqueue(frames: Buffer[], done: (err?: unknown) => void): void {
    this.queue.push({ frames, done });
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    while (this.queue.length > 0) {
      const n = Math.min(this.queue.length, this.coalesce);
      // Still queued while the socket takes them: `length` counts them until then.
      const items = this.queue.slice(0, n);
      let error: unknown;
      try {
        await this.socket.send(n === 1 ? items[0]!.frames : packMessages(items.map((i) => i.frames)));
      } catch (err) {
        error = err ?? new Error('send failed');
      }
      this.queue.splice(0, n);
      for (const item of items) item.done(error);
      // Let the rest of this turn queue up, to go as one message.
      if (this.coalesce > 1) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.pumping = false;
  }
}
