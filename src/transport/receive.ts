import type * as zmq from 'zeromq';

const DONE: IteratorResult<Buffer[]> = { done: true, value: undefined };

/**
 * A socket's messages until `signal` aborts (or the socket closes, or a receive fails). Lets a
 * stage leave its `for await` loop on SIGTERM without closing the socket under a pending
 * receive(); a message that arrives for that last pending receive is dropped, as it would be
 * by closing the socket.
 *
 * Written as a plain iterator, not an async generator racing each receive against the abort:
 * this runs once per message in every stage, and the generator's extra promises, the race and
 * an abort listener added and removed per message were a tenth of a no-model stage's CPU
 * (bench/stage.bench.ts). One listener serves the whole loop; it resolves only the receive
 * pending at that moment, so no message is ever held by a long-lived promise.
 */
export function until(socket: zmq.Readable, signal: AbortSignal): AsyncIterable<Buffer[]> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<Buffer[]> {
      let ended = false;
      let wake: ((r: IteratorResult<Buffer[]>) => void) | undefined;
      const end = (): IteratorResult<Buffer[]> => {
        if (!ended) {
          ended = true;
          signal.removeEventListener('abort', abort);
        }
        return DONE;
      };
      const abort = (): void => wake?.(end());
      signal.addEventListener('abort', abort, { once: true });
      const settle = (resolve: (r: IteratorResult<Buffer[]>) => void): void => {
        wake = resolve;
        socket.receive().then(
          (value) => {
            wake = undefined;
            resolve(ended ? DONE : { done: false, value });
          },
          // Closed under us (EAGAIN) or failed: the loop ends, as the socket's own iterator does on close.
          () => resolve(end()),
        );
      };
      return {
        next: () => (ended || signal.aborted ? Promise.resolve(end()) : new Promise(settle)),
        return: () => Promise.resolve(end()),
      };
    },
  };
}
