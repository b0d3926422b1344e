// The sink's live frames (src/dashboard/live-frames.ts): nothing is annotated for a stream
// nobody watches, at most one annotation runs per stream, and a watcher gets the newest frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { LiveFrames } from '../src/dashboard/live-frames.js';
import type { Job } from '../src/protocol/job.js';
import { waitFor } from './helpers.js';

const job = (stream: string, n: number): Job => ({
  meta: { job: n, origin: 'o', id: n, deadline: 0, accepted: 0, options: {}, stream, timings: {}, parts: [] },
});

test('annotates only watched streams, one at a time, and serves the newest frame', async () => {
  let calls = 0;
  let running = 0;
  let maxRunning = 0;
  const live = new LiveFrames(async (j) => {
    calls++;
    running++;
    maxRunning = Math.max(maxRunning, running);
    await new Promise((r) => setTimeout(r, 30));
    running--;
    return Buffer.from(`frame ${j.meta.job}`);
  });
  for (let i = 0; i < 10; i++) live.offer(job('cam1', i));
  assert.equal(calls, 0, 'nobody watches: nothing annotated');

  const server = createServer((req, res) => {
    if (!live.route(req, res, new URL(req.url!, 'http://x'))) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const pending = fetch(`${base}/streams/cam1.jpg?after=-1`); // long poll: waits for a frame
    // Offered only once the poll is in route() (the stream is watched, its waiter registered with it).
    await waitFor('the long poll reached the live view', () => live.streams().includes('cam1'), 10_000, 5);
    for (let i = 0; i < 5; i++) live.offer(job('cam1', i)); // only the first starts an annotation
    live.offer(job('cam2', 99)); // not watched
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'frame 0');
    assert.equal(res.headers.get('x-frame-seq'), '1');
    assert.equal(calls, 1);
    assert.equal(maxRunning, 1);
    assert.deepEqual(live.streams(), ['cam1']);
    live.offer(job('cam1', 7));
    await new Promise((r) => setTimeout(r, 60));
    const next = await fetch(`${base}/streams/cam1.jpg?after=1`);
    assert.equal(await next.text(), 'frame 7');
    const none = await fetch(`${base}/streams/cam1.jpg?after=2`); // nothing newer within the poll: 204
    assert.equal(none.status, 204);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
