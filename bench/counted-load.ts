import * as zmq from 'zeromq';
import { decodeReply, encodeHeader } from '../src/protocol/request.js';

/** Every request's replies, counted: what "exactly one reply, nothing lost" is checked against. */
export interface CountedResult {
  sent: number;
  /** Requests with at least one reply. */
  answered: number;
  ok: number;
  /** Failure replies by error code. */
  errors: Record<string, number>;
  /** Requests with no reply at all. */
  lost: number;
  /** Replies beyond the first for a request. */
  duplicates: number;
  seconds: number;
}

export interface CountedLoad {
  /** Stops sending; waits up to `graceMs` for the outstanding replies, then counts. */
  finish(graceMs: number): Promise<CountedResult>;
  /** Replies so far. */
  readonly replies: number;
  readonly sent: number;
}

/**
 * A closed-loop load of `window` requests in flight on one DEALER, every request a unique id,
 * until `count` have been sent or finish() is called. Replies are counted per id, so a lost or
 * a doubled reply shows; `timeoutMs` is each request's deadline in the pipeline.
 */
export function countedLoad(endpoint: string, image: Buffer, options: { window: number; count?: number; timeoutMs: number }): CountedLoad {
  const dealer = new zmq.Dealer({ linger: 0, sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });
  dealer.connect(endpoint);
  const replies = new Map<number, number>();
  const errors: Record<string, number> = {};
  let sent = 0;
  let received = 0;
  let ok = 0;
  let duplicates = 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  const t0 = performance.now();
  const limit = options.count ?? Infinity;

  const receiving = (async () => {
    for await (const [, body] of dealer) {
      const r = decodeReply(body!);
      const id = r.id as number;
      const n = (replies.get(id) ?? 0) + 1;
      replies.set(id, n);
      received++;
      if (n > 1) {
        duplicates++;
        continue;
      }
      if (r.ok) ok++;
      else errors[r.error.code] = (errors[r.error.code] ?? 0) + 1;
      wake?.();
    }
  })().catch(() => {});

  const sending = (async () => {
    while (!stopped && sent < limit) {
      if (sent - replies.size >= options.window) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
        continue;
      }
      await dealer.send([Buffer.alloc(0), encodeHeader({ id: sent, timeout_ms: options.timeoutMs }), image]);
      sent++;
    }
  })();

  return {
    get replies() {
      return received;
    },
    get sent() {
      return sent;
    },
    async finish(graceMs: number): Promise<CountedResult> {
      if (options.count === undefined) stopped = true;
      await sending;
      const until = Date.now() + graceMs;
      while (replies.size < sent && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      // A little longer, so a doubled reply right behind the first is seen too.
      await new Promise((r) => setTimeout(r, 200));
      stopped = true;
      dealer.close();
      await receiving;
      const seconds = (performance.now() - t0) / 1000;
      return { sent, answered: replies.size, ok, errors, lost: sent - replies.size, duplicates, seconds };
    },
  };
}

export function formatCounted(r: CountedResult): string {
  const codes = Object.entries(r.errors)
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  return `sent ${r.sent}, answered ${r.answered}, ok ${r.ok} (${((100 * r.ok) / Math.max(1, r.sent)).toFixed(2)} %), errors {${codes}}, lost ${r.lost}, duplicate replies ${r.duplicates}, ${r.seconds.toFixed(1)} s`;
}
