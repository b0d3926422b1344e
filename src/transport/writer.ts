import type * as zmq from 'zeromq';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** What the writer needs of a socket: zeromq.js's `send`, plus whether it is closed and how long a send may wait. */
export type WritableSocket = zmq.Writable & { readonly closed: boolean };

/**
 * Times one message is sent again after a spurious EAGAIN. zeromq.js checks ZMQ_EVENTS for
 * POLLOUT and then sends with ZMQ_DONTWAIT — at once, or a loop turn later once 512 sends in a
 * row went through synchronously; if libzmq drops the only pipe in between (a failed CURVE
 * handshake, a peer gone, a disconnect), the send fails with EAGAIN although the socket's send
 * timeout says "wait" — seen in CI as a plain client's request rejected after 7 ms instead of
 * timing out. The next try finds no POLLOUT and waits properly, so one is enough; the bound only
 * keeps a socket that goes on saying POLLOUT and then EAGAIN from spinning.
 */
const EAGAIN_RETRIES = 3;

/**
 * `socket.send(frames)`, sent again when it fails with an EAGAIN that is not what the socket's
 * options ask for (see EAGAIN_RETRIES). A spent send timeout and a socket closed under the send
 * also read EAGAIN; those, and every other error, are thrown as they are. `givenUp`: the caller
 * no longer wants the message sent (its own close).
 */
export async function sendPatiently(socket: WritableSocket, frames: Buffer[], givenUp: () => boolean = () => false): Promise<void> {
  const started = performance.now();
  for (let retries = 0; ; retries++) {
    try {
      return await socket.send(frames);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EAGAIN' || retries >= EAGAIN_RETRIES || givenUp() || socket.closed) throw err;
      // Read only now: the option of a closed socket throws. libuv's timers run on the loop's
      // cached clock and may fire early by a busy turn's length, hence the half.
      const timeout = socket.sendTimeout;
      if (timeout >= 0 && performance.now() - started >= timeout / 2) throw err;
      await nextTurn();
    }
  }
}

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
  private readonly givenUp = () => this.closed;

  constructor(
    private readonly socket: WritableSocket,
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
        await sendPatiently(this.socket, item.frames, this.givenUp);
        item.done();
      } catch (err) {
        item.done(err);
      }
      this.queue.shift();
    }
    this.pumping = false;
  }
}
