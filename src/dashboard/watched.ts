import type { Route } from '../metrics/server.js';

/** How long a stream counts as watched after the dashboard last said so, ms. */
export const WATCH_MS = 3000;

const watched = new Map<string, number>();

/**
 * Whether somebody watches `stream` in the dashboard's live view right now: then the stages
 * that would drop a job's pixels keep them, so the sink can draw the frame. With nobody
 * watching this is one Map size check per job.
 */
export function isWatched(stream: string | undefined): boolean {
  if (watched.size === 0 || stream === undefined) return false;
  const until = watched.get(stream);
  if (until === undefined) return false;
  if (until < Date.now()) {
    watched.delete(stream);
    return false;
  }
  return true;
}

/** Streams watched at once at most: the names come over HTTP, so their number is bounded. */
export const MAX_WATCHED = 64;

export function watch(stream: string, ms = WATCH_MS): void {
  if (!watched.has(stream) && watched.size >= MAX_WATCHED) {
    const now = Date.now();
    for (const [name, until] of watched) if (until < now) watched.delete(name);
    if (watched.size >= MAX_WATCHED) return;
  }
  watched.set(stream, Date.now() + ms);
}

/** `POST /watch/NAME` on a process's metrics port: the dashboard renews this every second while viewers watch. */
export const watchRoute: Route = (req, res, url) => {
  const match = /^\/watch\/(.+)$/.exec(url.pathname);
  if (!match || req.method !== 'POST') return false;
  watch(decodeURIComponent(match[1]!));
  res.writeHead(204);
  res.end();
  return true;
};
