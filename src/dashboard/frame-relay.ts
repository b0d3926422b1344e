import type { ServerResponse } from 'node:http';

/** A viewer further behind than this many bytes misses frames until it catches up. */
const MAX_BEHIND_BYTES = 512 * 1024;
const BOUNDARY = 'framepipe-frame';

export const MJPEG_CONTENT_TYPE = `multipart/x-mixed-replace; boundary=${BOUNDARY}`;

interface Relay {
  viewers: Set<ServerResponse>;
  latest?: Buffer;
  stop: AbortController;
}

/**
 * Live frames for the dashboard's viewers: one relay per watched stream asks the sinks for that
 * stream's latest annotated frame (a long poll: the sink annotates only while it is asked) and
 * writes each new frame to every viewer as one part of a multipart/x-mixed-replace (MJPEG)
 * response. A viewer whose socket has not drained is skipped, so a slow viewer loses frames but
 * never slows the others, the sinks or the pipeline, and memory stays one frame per stream. The
 * relay stops when its last viewer leaves.
 */
export class FrameRelay {
  private readonly relays = new Map<string, Relay>();

  constructor(
    private readonly sinks: () => string[],
    /** The other processes: told which streams are watched, so they keep those jobs' pixels for the sink. */
    private readonly stages: () => string[],
  ) {}

  /** Adds a viewer (an HTTP response) of `stream`. */
  watch(stream: string, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': MJPEG_CONTENT_TYPE, 'cache-control': 'no-store', connection: 'close' });
    let relay = this.relays.get(stream);
    if (!relay) {
      relay = { viewers: new Set(), stop: new AbortController() };
      this.relays.set(stream, relay);
      void this.run(stream, relay);
    }
    relay.viewers.add(res);
    if (relay.latest) write(res, relay.latest);
    const r = relay;
    res.on('close', () => {
      r.viewers.delete(res);
      if (r.viewers.size === 0) {
        r.stop.abort();
        this.relays.delete(stream);
      }
    });
  }

  /** The latest frame of a watched stream (for a still image), if any. */
  latest(stream: string): Buffer | undefined {
    return this.relays.get(stream)?.latest;
  }

  close(): void {
    for (const relay of this.relays.values()) {
      relay.stop.abort();
      for (const res of relay.viewers) res.end();
    }
    this.relays.clear();
  }

  private async run(stream: string, relay: Relay): Promise<void> {
    const seq = new Map<string, number>();
    const signal = relay.stop.signal;
    let told = 0;
    while (!signal.aborted) {
      if (Date.now() - told > 1000) {
        told = Date.now();
        for (const url of this.stages()) void fetch(`${url}/watch/${encodeURIComponent(stream)}`, { method: 'POST', signal: AbortSignal.timeout(1000) }).catch(() => {});
      }
      const sinks = this.sinks();
      if (sinks.length === 0) {
        await sleep(500, signal);
        continue;
      }
      // Every sink at once (a stream's frames may land on any sink replica); each long-polls ≤ 1 s.
      await Promise.all(
        sinks.map(async (sink) => {
          try {
            const after = seq.get(sink) ?? -1;
            const res = await fetch(`${sink}/streams/${encodeURIComponent(stream)}.jpg?after=${after}`, { signal: AbortSignal.any([signal, AbortSignal.timeout(3000)]) });
            seq.set(sink, Number(res.headers.get('x-frame-seq') ?? after));
            if (res.status !== 200) return;
            const jpeg = Buffer.from(await res.arrayBuffer());
            relay.latest = jpeg;
            for (const viewer of relay.viewers) write(viewer, jpeg);
          } catch {
            await sleep(200, signal);
          }
        }),
      );
    }
  }
}

function write(res: ServerResponse, jpeg: Buffer): void {
  if (res.writableLength > MAX_BEHIND_BYTES || res.destroyed) return;
  res.write(`--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
  res.write(jpeg);
  res.write('\r\n');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}
