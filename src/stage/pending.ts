/** What ingest remembers of a request until its one reply has gone out. */
export interface PendingRequest {
  /** Ingest's job number (the key). */
  job: number;
  envelope: Buffer[];
  id: string | number | null;
  stream?: string;
  frame?: number;
  format: 'msgpack' | 'json';
  timer: NodeJS.Timeout;
  /** The job as sent, kept only where it may have to be sent again (broker mode); unset while it waits in a latest-frame box. */
  frames?: Buffer[];
  /** Latest-frame mode: the stream whose slot or box this request holds until it is answered. */
  latest?: string;
  /** Files ingest wrote for its job in shared memory: they go when it is answered (with those later stages wrote, listed in the result). */
  shared?: string[];
}

/**
 * Requests in flight, keyed by job number. Whoever removes an entry sends its reply: the sink's
 * result or the deadline, whichever comes first. That is what makes "exactly one reply" hold.
 */
export class PendingRequests {
  private readonly map = new Map<number, PendingRequest>();

  get size(): number {
    return this.map.size;
  }

  add(job: number, request: Omit<PendingRequest, 'timer' | 'job'>, deadlineMs: number, onExpire: (req: PendingRequest) => void): void {
    const timer = setTimeout(() => {
      const req = this.take(job);
      if (req) onExpire(req);
    }, Math.max(0, deadlineMs - Date.now()));
    this.map.set(job, { ...request, job, timer });
  }

  /** The entry, left in place. */
  get(job: number): PendingRequest | undefined {
    return this.map.get(job);
  }

  /** Removes and returns the entry; undefined when it was already answered. */
  take(job: number): PendingRequest | undefined {
    const req = this.map.get(job);
    if (!req) return undefined;
    clearTimeout(req.timer);
    this.map.delete(job);
    return req;
  }

  /** Entries still waiting, in no particular order (left in place). */
  waiting(): PendingRequest[] {
    return [...this.map.values()];
  }

  /** All entries, removed (for shutdown). */
  drain(): PendingRequest[] {
    const all = [...this.map.values()];
    for (const req of all) clearTimeout(req.timer);
    this.map.clear();
    return all;
  }
}
