import type { Job } from '../protocol/job.js';

/** One stream in latest-frame mode: how many of its frames are in the pipeline, and the one waiting. */
interface StreamState {
  inflight: number;
  /** The newest frame that arrived while `limit` were in flight; it goes in when one of them is answered. */
  boxed?: Job;
}

/** What ingest does with a latest-mode frame that just arrived. */
export type Admission =
  /** A slot is free: send it into the pipeline now (then call started()). */
  | { action: 'send' }
  /** The stream is at its limit: the frame waits in the box; `displaced` (if any) was there and is now SKIPPED. */
  | { action: 'box'; displaced?: Job };

/**
 * Latest-frame bookkeeping of one ingest (docs/protocol.md, "Latest-frame mode"). Per stream name
 * at most `limit` frames are in the pipeline; one more, the newest, waits in a one-slot box, and
 * any frame it pushes out of the box is answered SKIPPED. So under overload a camera's frames
 * spend at most one pipeline pass plus one box wait at ingest, instead of queueing behind each other.
 *
 * Only counts and holds jobs: the caller owns replies, timers and sockets. Invariant: a stream
 * has a boxed frame only while `limit` of its frames are in flight. An entry exists only while
 * the stream has a frame in flight or boxed, so memory is bounded by the requests ingest holds.
 */
export class LatestFrames {
  private readonly streams = new Map<string, StreamState>();

  constructor(
    /** Frames of one stream in the pipeline at once (`limits.latest_inflight`). */
    readonly limit: number,
  ) {}

  /** Streams with a frame in flight or waiting. */
  get size(): number {
    return this.streams.size;
  }

  /** Where a newly arrived frame of `stream` goes; with 'box', the frame is in the box already. */
  admit(stream: string, job: Job): Admission {
    const state = this.streams.get(stream);
    if (!state || state.inflight < this.limit) return { action: 'send' };
    const displaced = state.boxed;
    state.boxed = job;
    return displaced ? { action: 'box', displaced } : { action: 'box' };
  }

  /** Whether admit() would box a new frame of `stream` (ingest checks its in-flight limit only for a frame that adds to the total). */
  boxIsEmpty(stream: string): boolean {
    return this.streams.get(stream)?.boxed === undefined;
  }

  /** A frame of `stream` was sent into the pipeline. */
  started(stream: string): void {
    const state = this.streams.get(stream);
    if (state) state.inflight++;
    else this.streams.set(stream, { inflight: 1 });
  }

  /**
   * Job `job` of `stream` was answered (result, TIMEOUT, or shutdown). A boxed job just leaves the
   * box; an in-flight one frees its slot, and the boxed job, if any, is returned: the caller sends
   * it now (and calls started()) or answers it.
   */
  answered(stream: string, job: number): Job | undefined {
    const state = this.streams.get(stream);
    if (!state) return undefined;
    let next: Job | undefined;
    if (state.boxed?.meta.job === job) {
      delete state.boxed;
    } else {
      state.inflight = Math.max(0, state.inflight - 1);
      next = state.boxed;
      delete state.boxed;
    }
    if (state.inflight === 0 && !state.boxed) this.streams.delete(stream);
    return next;
  }

  /** Forgets everything (shutdown: every request has been answered by then). */
  clear(): void {
    this.streams.clear();
  }
}
