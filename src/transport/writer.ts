import type * as zmq from 'zeromq';

/**
 * The single writer of one socket. zeromq.js allows one pending send() per socket (a second
 * throws EBUSY, zeromq.js #381/#427), so all senders queue here and one loop feeds the socket.
 * The queue is bounded: `offer` refuses when full (ingest turns that into OVERLOADED), `send`
 * waits for its turn (stages use it to pass back-pressure upstream).
 */
export class SocketWriter {
  private readonly queue: { frames: Buffer[]; done: (err?: unknown) => void }[] = [];
  private pumping = false;
  private closed = false;

  constructor(
    private readonly socket: zmq.Writable,
    /** Messages waiting here at most (on top of the socket's own ZMQ_SNDHWM). */
    readonly capacity: number,
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
      const item = this.queue[0]!;
      try {
        await this.socket.send(item.frames);
        item.done();
      } catch (err) {
        item.done(err);
      }
      this.queue.shift();
    }
    this.pumping = false;
  }
}
