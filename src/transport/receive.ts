import type * as zmq from 'zeromq';

/**
 * A socket's messages until `signal` aborts (or the socket closes). Lets a stage leave its
 * `for await` loop on SIGTERM without closing the socket under a pending receive().
 *
 * Each wait listens for the abort afresh and unlistens after: racing every receive against one
 * long-lived promise would pin every message ever received (the race's reaction holds it) and
 * drown the process in garbage collection.
 */
export async function* until(socket: zmq.Readable, signal: AbortSignal): AsyncGenerator<Buffer[]> {
  const it = socket[Symbol.asyncIterator]();
  while (!signal.aborted) {
    let onAbort!: () => void;
    const stopped = new Promise<IteratorResult<Buffer[]>>((resolve) => {
      onAbort = () => resolve({ done: true, value: undefined });
      signal.addEventListener('abort', onAbort, { once: true });
    });
    let next: IteratorResult<Buffer[]>;
    try {
      next = await Promise.race([it.next(), stopped]);
    } catch {
      return;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (next.done) return;
    yield next.value;
  }
}
