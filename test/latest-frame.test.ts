// Latest-frame mode (request header `latest`) against real stage processes: a stream's waiting
// frames are answered SKIPPED and only the newest is processed, at most limits.latest_inflight of
// a stream are in the pipeline, and every request still gets exactly one reply.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as zmq from 'zeromq';
import { launchPipeline, spawnStage, stopProcesses, waitReady } from '../src/cli/launcher.js';
import { Client } from '../src/client/client.js';
import { decodeReply, isSkipped } from '../src/protocol/request.js';
import type { Reply } from '../src/protocol/types.js';
import { header, reqOnce, startPipeline, transportSets, type TestPipeline } from './helpers.js';
import { freeMetricsBase, getText, sample } from './metrics-helpers.js';

const image = Buffer.from('x');
// Long enough that a burst's sends all reach ingest while its first frame is still in detect,
// even on a loaded machine.
const DELAY = 400;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Received {
  reply: Reply;
  /** performance.now() when the reply arrived. */
  at: number;
}

/** A DEALER that records every reply by id, failing the test on a second reply to one id. */
class Probe {
  readonly dealer = new zmq.Dealer({ linger: 0 });
  readonly replies = new Map<string, Received>();
  readonly sentAt = new Map<string, number>();
  private readonly loop: Promise<void>;

  constructor(endpoint: string) {
    this.dealer.connect(endpoint);
    this.loop = (async () => {
      for await (const frames of this.dealer) {
        const reply = decodeReply(frames[frames.length - 1]!);
        const id = String(reply.id);
        assert.ok(!this.replies.has(id), `a second reply for ${id}`);
        this.replies.set(id, { reply, at: performance.now() });
      }
    })().catch((err: unknown) => {
      if ((err as { code?: string }).code !== 'EAGAIN' && !this.dealer.closed) throw err;
    });
  }

  async send(fields: Record<string, unknown>): Promise<void> {
    this.sentAt.set(String(fields.id), performance.now());
    await this.dealer.send([Buffer.alloc(0), header({ timeout_ms: 10_000, ...fields }), image]);
  }

  /** Waits until every id has its reply (or `ms` passes), then a little longer to catch a duplicate. */
  async settle(ids: string[], ms = 10_000): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until && ids.some((id) => !this.replies.has(id))) await sleep(20);
    await sleep(300);
    const missing = ids.filter((id) => !this.replies.has(id));
    assert.deepEqual(missing, [], 'every request answered');
  }

  get(id: string): Reply {
    return this.replies.get(id)!.reply;
  }

  /** Waits for the reply to `id` (failing after `ms`): an event to sequence on, not a sleep. */
  async waitFor(id: string, ms = 10_000): Promise<Reply> {
    const until = Date.now() + ms;
    while (Date.now() < until && !this.replies.has(id)) await sleep(5);
    assert.ok(this.replies.has(id), `no reply for ${id} within ${ms} ms`);
    return this.get(id);
  }

  close(): void {
    this.dealer.close();
    void this.loop;
  }
}

const code = (r: Reply) => (r.ok ? 'ok' : isSkipped(r) ? 'SKIPPED' : r.error.code);

describe('latest-frame mode, limits.latest_inflight=1 (noop, detect 400 ms a frame, 4 at a time)', () => {
  let pipe: TestPipeline;
  let metricsBase: number;
  before(async () => {
    metricsBase = await freeMetricsBase();
    // detect could take 4 frames at once: only latest_inflight keeps a stream to one.
    pipe = await startPipeline('noop', [`detect.model.delay_ms=${DELAY}`, 'detect.concurrency=4', 'limits.latest_inflight=1', `metrics.port=${metricsBase}`, 'log.level=warn']);
  });
  after(async () => {
    await pipe?.stop();
  });

  test('a burst of one stream: the first and the newest are processed, every frame between is SKIPPED by its successor', async () => {
    const probe = new Probe(pipe.endpoint);
    try {
      const ids = Array.from({ length: 10 }, (_, i) => `b-${i}`);
      for (let i = 0; i < 10; i++) await probe.send({ id: ids[i], stream: 'burst', frame: i, latest: true });
      await probe.settle(ids);
      assert.deepEqual(
        ids.map((id) => code(probe.get(id))),
        ['ok', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'ok'],
      );
      for (let i = 1; i < 9; i++) {
        const r = probe.get(ids[i]!);
        assert.ok(isSkipped(r));
        // A skipped frame says which newer frame took its place, and echoes stream and frame.
        assert.deepEqual(r.superseded_by, { id: ids[i + 1], frame: i + 1 });
        assert.equal(r.stream, 'burst');
        assert.equal(r.frame, i);
        assert.equal(r.error.code, 'SKIPPED');
        // Answered at once when the next frame arrived, long before the first frame's result.
        assert.ok(probe.replies.get(ids[i]!)!.at < probe.replies.get(ids[0]!)!.at, `${ids[i]} answered before b-0's result`);
      }
      const newest = probe.get('b-9');
      assert.ok(newest.ok);
      assert.equal(newest.frame, 9);
      // It waited in the box for b-0 to be answered: b-0 spent at least DELAY in detect, less the
      // time b-9 was sent after b-0 (measured here, so a slow send loop does not count against it).
      const boxed = newest.timings_ms.ingest_wait!;
      const sentAfter = probe.sentAt.get('b-9')! - probe.sentAt.get('b-0')!;
      assert.ok(boxed >= DELAY * 0.75 - sentAfter, `ingest_wait ${boxed} ms ≈ ${DELAY} - ${sentAfter.toFixed(0)} ms`);
      assert.ok(!('ingest_wait' in (probe.get('b-0') as { timings_ms: object }).timings_ms), 'b-0 went straight in');
    } finally {
      probe.close();
    }
  });

  test('another stream and requests without `latest` are never skipped while one stream is', async () => {
    const probe = new Probe(pipe.endpoint);
    try {
      const ids: string[] = [];
      const send = async (fields: Record<string, unknown>) => {
        ids.push(String(fields.id));
        await probe.send(fields);
      };
      // Stream "other" sends two frames (one in flight, one boxed): nothing of it may be skipped.
      await send({ id: 'o-0', stream: 'other', frame: 0, latest: true });
      for (let i = 0; i < 8; i++) {
        await send({ id: `a-${i}`, stream: 'busy', frame: i, latest: true });
        // Same stream name, not in latest mode: ordinary requests, never counted or skipped.
        if (i % 2 === 0) await send({ id: `plain-${i}`, stream: 'busy', frame: 100 + i });
      }
      await send({ id: 'o-1', stream: 'other', frame: 1, latest: true });
      await probe.settle(ids);
      for (const id of ['o-0', 'o-1', 'plain-0', 'plain-2', 'plain-4', 'plain-6']) assert.equal(code(probe.get(id)), 'ok', id);
      const busy = Array.from({ length: 8 }, (_, i) => code(probe.get(`a-${i}`)));
      assert.deepEqual(busy, ['ok', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'ok']);
    } finally {
      probe.close();
    }
  });

  test('a boxed frame whose deadline passes gets TIMEOUT, and the box takes the next frame', async () => {
    const probe = new Probe(pipe.endpoint);
    try {
      await probe.send({ id: 't-0', stream: 'tmo', frame: 0, latest: true });
      await probe.send({ id: 't-1', stream: 'tmo', frame: 1, latest: true, timeout_ms: 60 });
      // t-2 only once t-1 has been answered, so that ingest cannot read both together (t-1 would be SKIPPED).
      assert.equal(code(await probe.waitFor('t-1')), 'TIMEOUT');
      await probe.send({ id: 't-2', stream: 'tmo', frame: 2, latest: true });
      await probe.settle(['t-0', 't-1', 't-2']);
      assert.deepEqual(['t-0', 't-1', 't-2'].map((id) => code(probe.get(id))), ['ok', 'TIMEOUT', 'ok']);
      // The box's own timer answered it, not a late result: well before t-0 came back.
      assert.ok(probe.replies.get('t-1')!.at < probe.replies.get('t-0')!.at);
      // The emptied box took t-2 (it waited there for t-0), rather than t-2 going straight in.
      const t2 = probe.get('t-2');
      assert.ok(t2.ok && t2.timings_ms.ingest_wait !== undefined, 't-2 waited in the box');
      assert.ok(probe.replies.get('t-2')!.at > probe.replies.get('t-0')!.at, 't-2 processed after t-0');
    } finally {
      probe.close();
    }
  });

  test('bad option combinations get BAD_REQUEST', async () => {
    const noStream = await reqOnce(pipe.endpoint, [header({ id: 'ns', latest: true }), image]);
    assert.equal(code(noStream), 'BAD_REQUEST');
    assert.match((noStream as { error: { message: string } }).error.message, /latest.*stream/);
    const notBool = await reqOnce(pipe.endpoint, [header({ id: 'nb', stream: 'cam', latest: 'yes' }), image]);
    assert.equal(code(notBool), 'BAD_REQUEST');
    assert.match((notBool as { error: { message: string } }).error.message, /latest/);
    // latest: false is the ordinary mode, stream or not.
    assert.equal(code(await reqOnce(pipe.endpoint, [header({ id: 'f', latest: false }), image])), 'ok');
  });

  test('the TS Client returns SKIPPED replies instead of rejecting', async () => {
    const client = new Client(pipe.endpoint, { timeoutMs: 10_000 });
    try {
      const replies = await Promise.all([0, 1, 2].map((frame) => client.infer(image, { stream: 'ts', frame, latest: true })));
      assert.deepEqual(replies.map(code), ['ok', 'SKIPPED', 'ok']);
    } finally {
      await client.close();
    }
  });

  test("ingest's metrics count the SKIPPED replies above (8 + 6 + 1) apart, never as errors", async () => {
    const text = (await getText(`http://127.0.0.1:${metricsBase}/metrics`)).body;
    assert.equal(sample(text, 'framepipe_requests_total{outcome="skipped",stage="ingest"}'), 15);
    assert.ok(!/framepipe_errors_total\{code="SKIPPED"/.test(text), 'no SKIPPED among the errors');
    assert.ok(!/code="SKIPPED"/.test(text), 'no SKIPPED code in any series');
  });
});

describe('latest-frame mode, limits.latest_inflight=2', () => {
  let pipe: TestPipeline;
  before(async () => {
    pipe = await startPipeline('noop', [`detect.model.delay_ms=${DELAY}`, 'detect.concurrency=4', 'limits.latest_inflight=2', 'log.level=warn']);
  });
  after(async () => {
    await pipe?.stop();
  });

  test('a camera at 50 frames/s: never more than 2 frames of the stream in the pipeline, and 2 at times', async () => {
    const probe = new Probe(pipe.endpoint);
    try {
      const ids = Array.from({ length: 40 }, (_, i) => `c-${i}`);
      for (let i = 0; i < ids.length; i++) {
        await probe.send({ id: ids[i], stream: 'cam', frame: i, latest: true });
        await sleep(20);
      }
      await probe.settle(ids);
      // Each processed frame was in the pipeline from ingest_wait until the sink finished it
      // (timings_ms.total), both measured by the stages from when ingest accepted it. Placed on
      // this clock by its send time, each is off only by its own trip to ingest; TRIM at both
      // ends absorbs up to 2 × TRIM of difference between two frames' trips. A third frame in
      // flight would overlap the other two for about DELAY - 40 ms, far more than 2 × TRIM.
      const TRIM = 100;
      const spans: [number, number][] = [];
      for (const id of ids) {
        const r = probe.get(id);
        if (!r.ok) continue;
        const sent = probe.sentAt.get(id)!;
        assert.equal(typeof r.timings_ms.total, 'number', `${id} reports timings_ms.total`);
        spans.push([sent + (r.timings_ms.ingest_wait ?? 0) + TRIM, sent + r.timings_ms.total! - TRIM]);
      }
      let most = 0;
      for (const [s] of spans) most = Math.max(most, spans.filter(([a, b]) => a <= s && s < b).length);
      assert.ok(spans.length >= 4, `${spans.length} frames processed`);
      assert.equal(most, 2, 'frames of the stream in the pipeline at once');
      const codes = ids.map((id) => code(probe.get(id)));
      assert.ok(codes.every((c) => c === 'ok' || c === 'SKIPPED'), codes.join(' '));
      assert.equal(codes[codes.length - 1], 'ok', 'the newest frame is processed');
    } finally {
      probe.close();
    }
  });
});

describe('latest-frame mode and the ways a pipeline ends or restarts', () => {
  test('SIGTERM with a frame in flight and one boxed: each request gets exactly one reply', async () => {
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: [...(await transportSets()), `detect.model.delay_ms=${DELAY}`, 'limits.latest_inflight=1', 'log.level=warn'] }, stdio: 'pipe' });
    const probe = new Probe(pipeline.endpoint);
    try {
      const ids = Array.from({ length: 5 }, (_, i) => `d-${i}`);
      for (let i = 0; i < ids.length; i++) await probe.send({ id: ids[i], stream: 'drain', frame: i, latest: true });
      // d-3 is answered SKIPPED when d-4 is read: only then is every frame in (a frame read after
      // SIGTERM would get OVERLOADED instead).
      assert.equal(code(await probe.waitFor('d-3')), 'SKIPPED');
      assert.ok(!probe.replies.has('d-0'), 'd-0 still in flight when SIGTERM is sent');
      pipeline.procs.find((p) => p.stage === 'ingest')!.child.kill('SIGTERM');
      await probe.settle(ids);
      // The drain lets the frame in flight finish, then the boxed one goes in and finishes too.
      assert.deepEqual(ids.map((id) => code(probe.get(id))), ['ok', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'ok']);
    } finally {
      probe.close();
      await pipeline.stop();
    }
  });

  test('a stage killed with a frame in flight and one boxed: after the restart the lost frame is sent again, then the boxed one', async () => {
    const flags = { profile: 'noop', set: [...(await transportSets()), 'detect.model.delay_ms=400', 'limits.latest_inflight=1', 'log.level=warn'] };
    const pipeline = await launchPipeline({ flags, stdio: 'pipe' });
    const probe = new Probe(pipeline.endpoint);
    let detect;
    try {
      const ids = Array.from({ length: 4 }, (_, i) => `r-${i}`);
      // 8 s deadlines: without the re-send r-0 would be answered TIMEOUT, not ok.
      for (let i = 0; i < ids.length; i++) await probe.send({ id: ids[i], stream: 'restart', frame: i, latest: true, timeout_ms: 8000 });
      await sleep(100);
      // What the supervisor does (src/cli/main.ts): a new detect, then ingest is told to re-send.
      pipeline.procs.find((p) => p.stage === 'detect')!.child.kill('SIGKILL');
      await sleep(200);
      detect = spawnStage('detect', { flags, stdio: 'pipe' });
      await waitReady(detect, 30_000);
      pipeline.procs.find((p) => p.stage === 'ingest')!.child.send({ type: 'stage-restarted', stage: 'detect' });
      await probe.settle(ids);
      assert.deepEqual(ids.map((id) => code(probe.get(id))), ['ok', 'SKIPPED', 'SKIPPED', 'ok']);
      // The boxed frame went in only after r-0's answer: one stream, one frame at a time.
      assert.ok(probe.replies.get('r-3')!.at > probe.replies.get('r-0')!.at);
    } finally {
      probe.close();
      await pipeline.stop();
      if (detect) await stopProcesses([detect]);
    }
  });

  test('broker mode: the same skipping, one reply per request', async () => {
    const pipeline = await launchPipeline({
      flags: { profile: 'noop', set: [...(await transportSets()), 'transport.mode=broker', `detect.model.delay_ms=${DELAY}`, 'limits.latest_inflight=1', 'log.level=warn'] },
      stdio: 'pipe',
    });
    const probe = new Probe(pipeline.endpoint);
    try {
      const ids = Array.from({ length: 6 }, (_, i) => `k-${i}`);
      for (let i = 0; i < ids.length; i++) await probe.send({ id: ids[i], stream: 'brk', frame: i, latest: true });
      await probe.settle(ids);
      assert.deepEqual(ids.map((id) => code(probe.get(id))), ['ok', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'SKIPPED', 'ok']);
    } finally {
      probe.close();
      await pipeline.stop();
    }
  });
});
