import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Job } from '../protocol/job.js';
import type { Detection } from '../protocol/types.js';
import { MAX_WATCHED, watch, WATCH_MS } from './watched.js';

/** How long a request for the next frame waits for one, ms. */
const LONG_POLL_MS = 1000;

type Annotator = (job: Job, detections: Detection[]) => Promise<Buffer | undefined>;

interface Watch {
  lastPoll: number;
  seq: number;
  jpeg?: Buffer;
  /** One annotation at a time per stream: frames that arrive meanwhile are skipped, never queued. */
  busy: boolean;
  waiters: Set<() => void>;
}

/**
 * The sink's live view: the latest annotated frame of each stream somebody watches. A stream is
 * watched while the dashboard keeps asking for it (`GET /streams/NAME.jpg?after=SEQ` on the
 * sink's metrics port, a long poll); nothing is annotated or kept for other streams, so with no
 * viewer the sink's hot path is one Map size check. Annotation runs beside the reply, never
 * delays it, and at most one per stream at a time: memory is one JPEG per watched stream.
 */
export class LiveFrames {
  private readonly watched = new Map<string, Watch>();

  constructor(private readonly annotator: Annotator) {}

  /** Called with every finished job; cheap unless its stream is watched. */
  offer(job: Job): void {
    if (this.watched.size === 0) return;
    const stream = job.meta.stream;
    if (stream === undefined) return;
    const w = this.watched.get(stream);
    if (!w || w.busy) return;
    if (Date.now() - w.lastPoll > WATCH_MS && w.waiters.size === 0) {
      this.watched.delete(stream);
      return;
    }
    w.busy = true;
    this.annotator(job, job.meta.detections ?? [])
      .then((jpeg) => {
        if (!jpeg) return;
        w.jpeg = jpeg;
        w.seq++;
        for (const wake of w.waiters) wake();
        w.waiters.clear();
      })
      .catch(() => {})
      .finally(() => {
        w.busy = false;
      });
  }

  /** Streams watched right now. */
  streams(): string[] {
    return [...this.watched.keys()];
  }

  /** The HTTP route on the metrics port. */
  readonly route = (_req: IncomingMessage, res: ServerResponse, url: URL): boolean => {
    const match = /^\/streams\/(.+)\.jpg$/.exec(url.pathname);
    if (!match) return false;
    const stream = decodeURIComponent(match[1]!);
    let w = this.watched.get(stream);
    if (!w) {
      // Names come over HTTP: forget streams nobody asked for lately, and hold at most MAX_WATCHED.
      for (const [name, old] of this.watched) if (Date.now() - old.lastPoll > WATCH_MS && old.waiters.size === 0) this.watched.delete(name);
      if (this.watched.size >= MAX_WATCHED) {
        res.writeHead(429);
        res.end();
        return true;
      }
      w = { lastPoll: Date.now(), seq: 0, busy: false, waiters: new Set() };
      this.watched.set(stream, w);
    }
    const entry = w;
    entry.lastPoll = Date.now();
    watch(stream);
    const after = Number(url.searchParams.get('after') ?? -1);
    const send = () => {
      if (res.writableEnded || res.destroyed) return;
      if (!entry.jpeg || entry.seq <= after) {
        res.writeHead(204, { 'x-frame-seq': String(entry.seq) });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'image/jpeg', 'x-frame-seq': String(entry.seq), 'cache-control': 'no-store' });
      res.end(entry.jpeg);
    };
    if (entry.jpeg && entry.seq > after) {
      send();
      return true;
    }
    const wake = () => {
      clearTimeout(timer);
      send();
    };
    const timer = setTimeout(() => {
      entry.waiters.delete(wake);
      send();
    }, LONG_POLL_MS);
    entry.waiters.add(wake);
    res.on('close', () => {
      clearTimeout(timer);
      entry.waiters.delete(wake);
    });
    return true;
  };
}
