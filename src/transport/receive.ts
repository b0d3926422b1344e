import type * as zmq from 'zeromq';

/**
 * A socket's messages until `stopping` resolves (or the socket closes). Lets a stage leave its
 * `for await` loop on SIGTERM without closing the socket under a pending receive().
 */
export async function* until(socket: zmq.Readable, stopping: Promise<void>): AsyncGenerator<Buffer[]> {
  const it = socket[Symbol.asyncIterator]();
  const stop = stopping.then(() => ({ done: true as const, value: undefined }));
  while (true) {
    let next: IteratorResult<Buffer[]>;
    try {
      next = await Promise.race([it.next(), stop]);
    } catch {
      return;
    }
    if (next.done) return;
    yield next.value;
  }
}
