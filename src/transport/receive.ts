import type * as zmq from 'zeromq';

/** A socket to receive from (every zeromq socket type that reads has `closed`). */
export type ReadableSocket = zmq.Readable & { readonly closed: boolean };

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
 *
 * One next() at a time (as `for await` and runPipe call it): a second while one is pending is
 * refused, since zeromq allows one pending receive per socket.
 */
export function until(socket: ReadableSocket, signal: AbortSignal): AsyncIterable<Buffer[]> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<Buffer[]> {
      let ended = false;
      let listening = false;
      /** Resolves the pending next(), if one is. */
      let wake: ((r: IteratorResult<Buffer[]>) => void) | undefined;
      const end = (): IteratorResult<Buffer[]> => {
        if (!ended) {
          ended = true;
          if (listening) signal.removeEventListener('abort', abort);
          // A next() still pending (return() during a receive) ends too.
          const pending = wake;
          wake = undefined;
          pending?.(DONE);
        }
        return DONE;
      };
      const abort = (): void => void end();
      const settle = (resolve: (r: IteratorResult<Buffer[]>) => void): void => {
        let received: Promise<Buffer[]>;
        try {
          // Throws at once when the socket is closed (EBADF) or busy (EBUSY).
          received = socket.receive();
        } catch {
          resolve(end());
          return;
        }
        wake = resolve;
        received.then(
          (value) => {
            if (wake !== resolve) return; // ended meanwhile: that next() already got DONE
            wake = undefined;
            resolve({ done: false, value });
          },
          // Closed under us (EAGAIN) or failed: the loop ends, as the socket's own iterator does on close.
          () => resolve(end()),
        );
      };
      return {
        next: () => {
          if (ended || signal.aborted || socket.closed) return Promise.resolve(end());
          if (wake) return Promise.reject(new Error('until(): next() called while a receive is pending'));
          if (!listening) {
            listening = true;
            signal.addEventListener('abort', abort, { once: true });
          }
          return new Promise(settle);
        },
        return: () => Promise.resolve(end()),
      };
    },
  };
}
