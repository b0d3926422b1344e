// Batching across requests (detect.batch / classify.batch): however jobs are gathered — batch
// size 1, 4 or 8, waiting 0, 5 or 50 ms — every request gets exactly one reply, and it carries
// its OWN results: the same as that image sent alone. A bad image fails only itself.
//
// First the gather logic in one process (runPipe over real PUSH/PULL sockets, the real noop
// processor), then whole pipelines: noop with a synthetic batched model, the OCR profile on
// samples/ and the objects profile on ../shared/images.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import * as zmq from 'zeromq';
import { createLogger } from '../src/log.js';
import { metricsPort } from '../src/metrics/ports.js';
import { NoopProcessor } from '../src/models/noop.js';
import { BadImageError } from '../src/protocol/errors.js';
import { decodeJob, encodeJob, type Job } from '../src/protocol/job.js';
import { decodeReply } from '../src/protocol/request.js';
import type { Detection, Reply } from '../src/protocol/types.js';
import { runPipe, type PipeStats } from '../src/stage/run-pipe.js';
import type { StageProcessor } from '../src/stage/processor.js';
import { freePorts, hasShared, header, repoRoot, sharedDir, startPipeline, waitFor, type TestPipeline } from './helpers.js';
import { freeMetricsBase, getText } from './metrics-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Distinct small PNGs: their sizes tell the replies apart. */
async function pngs(n: number): Promise<Buffer[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      sharp({ create: { width: 20 + i, height: 10 + 2 * i, channels: 3, background: { r: 10 * i, g: 128, b: 255 - 10 * i } } })
        .png()
        .toBuffer(),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// The gather logic, in one process.

/** The real noop processor, with every call it gets written down (the batch sizes are the test). */
class Recorded implements StageProcessor {
  readonly name = 'recorded';
  readonly calls: string[] = [];
  readonly sizes: number[] = [];
  constructor(
    private readonly inner: NoopProcessor,
    private readonly batchFails = false,
  ) {}
  describe(): Record<string, unknown> {
    return {};
  }
  process(job: Job): Promise<Job> {
    this.calls.push('process');
    return this.inner.process(job);
  }
  async processBatch(jobs: Job[]): Promise<PromiseSettledResult<Job>[]> {
    this.calls.push(`batch:${jobs.length}`);
    this.sizes.push(jobs.length);
    if (this.batchFails) throw new Error('the batched inference fell over');
    return this.inner.processBatch(jobs);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function jobFrames(id: string, image: Buffer | undefined, extra: Partial<Job['meta']> = {}): Buffer[] {
  const now = Date.now();
  return encodeJob({ meta: { job: 0, origin: 'test', id, deadline: now + 30_000, accepted: now, options: {}, timings: {}, parts: [], ...extra }, image });
}

interface Loop {
  push: zmq.Push;
  out: Job[];
  dropped: string[];
  done: Promise<PipeStats>;
  stop(): Promise<PipeStats>;
}

/** runPipe on a real PULL socket; jobs are pushed in over loopback TCP. */
async function loop(
  processor: StageProcessor,
  batch: { maxSize: number; maxWaitMs: number },
  concurrency = 1,
  startLater?: Promise<void>,
  onFailure: (job: Job) => Job = (job) => job,
): Promise<Loop> {
  const [port] = await freePorts(1);
  const pull = new zmq.Pull({ linger: 0 });
  await pull.bind(`tcp://127.0.0.1:${port}`);
  const push = new zmq.Push({ linger: 0 });
  push.connect(`tcp://127.0.0.1:${port}`);
  const out: Job[] = [];
  const dropped: string[] = [];
  const ac = new AbortController();
  const done = (async () => {
    await startLater;
    return runPipe<Job>({
      stage: 'detect',
      input: pull,
      processor,
      emit: async (job) => {
        out.push(job);
      },
      onFailure,
      dropped: (frames) => {
        try {
          dropped.push(String(decodeJob(frames).meta.id));
        } catch {
          dropped.push('malformed');
        }
      },
      concurrency,
      batch,
      log: createLogger('detect', 'silent'),
      signal: ac.signal,
    });
  })();
  return {
    push,
    out,
    dropped,
    done,
    async stop() {
      ac.abort();
      const stats = await done;
      push.close();
      pull.close();
      return stats;
    },
  };
}

/** Long enough for a few small messages pushed over loopback to be queued at the PULL socket, even on a stalling host. */
const LOOPBACK_MS = 1000;

describe('gathering jobs into batches (runPipe, one process)', () => {
  test('batch.max_size 1: process() per job, processBatch never, each job once', async () => {
    const proc = new Recorded(new NoopProcessor('noop', true, 1e8));
    const images = await pngs(6);
    const l = await loop(proc, { maxSize: 1, maxWaitMs: 50 });
    for (const [i, img] of images.entries()) await l.push.send(jobFrames(`j${i}`, img));
    await waitFor('6 jobs out', () => l.out.length === 6, 5000);
    const stats = await l.stop();
    assert.deepEqual(proc.calls, Array(6).fill('process'));
    assert.deepEqual(l.out.map((j) => [j.meta.id, j.meta.width]).sort(), images.map((_, i) => [`j${i}`, 20 + i]).sort());
    assert.equal(stats.done, 6);
  });

  test('max_size 4, max_wait_ms 0: jobs already waiting fill batches of 4; the rest goes at once', async () => {
    const proc = new Recorded(new NoopProcessor('noop', true, 1e8));
    const images = await pngs(10);
    let go!: () => void;
    const l = await loop(proc, { maxSize: 4, maxWaitMs: 0 }, 1, new Promise<void>((r) => (go = r)));
    // Queue all ten before the loop starts: then what is "already waiting" is all of them.
    for (const [i, img] of images.entries()) await l.push.send(jobFrames(`j${i}`, img));
    await sleep(LOOPBACK_MS);
    go();
    await waitFor('10 jobs out', () => l.out.length === 10, 5000);
    await l.stop();
    assert.deepEqual(proc.sizes, [4, 4, 2]);
    for (const j of l.out) assert.equal(j.meta.width, 20 + Number(String(j.meta.id).slice(1)), `job ${j.meta.id} has its own result`);
    // The wait ends when the batch starts: recorded, never negative.
    for (const j of l.out) assert.ok(j.meta.timings.detect_wait! >= 0 && j.meta.timings.detect! >= 0);
  });

  test('max_wait_ms 300: a lone job waits for company at most about 300 ms, then goes alone', async () => {
    const proc = new Recorded(new NoopProcessor('noop', false, 1e8));
    // 300 ms, not less: the second pair below must land in one window even when the host stalls.
    const l = await loop(proc, { maxSize: 4, maxWaitMs: 300 });
    await l.push.send(jobFrames('alone', Buffer.from('x')));
    await waitFor('the lone job out', () => l.out.length === 1, 3000);
    // Two more, 10 ms apart: gathered into one batch by the same window.
    await l.push.send(jobFrames('a', Buffer.from('x')));
    await sleep(10);
    await l.push.send(jobFrames('b', Buffer.from('x')));
    await waitFor('a and b out', () => l.out.length === 3, 3000);
    await l.stop();
    // A single job goes through process(): no batch call for one.
    assert.deepEqual(proc.calls, ['process', 'batch:2']);
    const wait = l.out[0]!.meta.timings.detect_wait!;
    assert.ok(wait >= 295, `the lone job waited for its batch: ${wait} ms`);
  });

  test('a bad image in a batch fails only itself; expired and already-failed jobs keep their handling', async () => {
    const proc = new Recorded(new NoopProcessor('noop', true, 1e8));
    const [good1, good2] = await pngs(2);
    let go!: () => void;
    const l = await loop(proc, { maxSize: 8, maxWaitMs: 0 }, 1, new Promise<void>((r) => (go = r)));
    await l.push.send(jobFrames('good1', good1));
    await l.push.send(jobFrames('bad', good2!.subarray(0, 40)));
    await l.push.send(jobFrames('expired', good1, { deadline: Date.now() - 1 }));
    await l.push.send(jobFrames('failed-before', good1, { error: { code: 'TOO_LARGE', message: 'upstream said so' } }));
    await l.push.send([Buffer.from('not msgpack at all')]);
    await l.push.send(jobFrames('good2', good2));
    await sleep(LOOPBACK_MS);
    go();
    await waitFor('4 jobs out', () => l.out.length === 4, 5000);
    const stats = await l.stop();
    assert.deepEqual(proc.sizes, [3], 'good1, bad and good2 batched; the others never reach the processor');
    const byId = new Map(l.out.map((j) => [j.meta.id, j]));
    assert.equal(byId.get('good1')!.meta.error, undefined);
    assert.equal(byId.get('good1')!.meta.width, 20);
    assert.equal(byId.get('good2')!.meta.width, 21);
    assert.equal(byId.get('bad')!.meta.error?.code, 'BAD_IMAGE');
    assert.equal(byId.get('failed-before')!.meta.error?.code, 'TOO_LARGE');
    assert.deepEqual(l.dropped.sort(), ['expired', 'malformed'], 'dropped, their credit returned');
    assert.deepEqual({ ...stats }, { received: 6, done: 2, failed: 1, expired: 1, malformed: 1, dropped: 0 });
  });

  test('when the batched call throws as a whole, each job is processed on its own', async () => {
    const proc = new Recorded(new NoopProcessor('noop', true, 1e8), true);
    const images = await pngs(3);
    let go!: () => void;
    const l = await loop(proc, { maxSize: 4, maxWaitMs: 0 }, 1, new Promise<void>((r) => (go = r)));
    for (const [i, img] of images.entries()) await l.push.send(jobFrames(`j${i}`, i === 1 ? img.subarray(0, 30) : img));
    await sleep(LOOPBACK_MS);
    go();
    await waitFor('3 jobs out', () => l.out.length === 3, 5000);
    await l.stop();
    assert.deepEqual(proc.calls, ['batch:3', 'process', 'process', 'process']);
    const byId = new Map(l.out.map((j) => [j.meta.id, j]));
    assert.equal(byId.get('j0')!.meta.width, 20);
    assert.equal(byId.get('j1')!.meta.error?.code, 'BAD_IMAGE', 'its own outcome, not the batch error');
    assert.equal(byId.get('j2')!.meta.width, 22);
  });

  test('a processor without processBatch (fixed batch of 1) is looped over, one process() per job', async () => {
    const inner = new NoopProcessor('noop', true, 1e8);
    const calls: string[] = [];
    const fixed: StageProcessor = {
      name: 'fixed',
      describe: () => ({}),
      process: (job) => {
        calls.push(String(job.meta.id));
        if (job.meta.id === 'boom') return Promise.reject(new BadImageError('not an image'));
        return inner.process(job);
      },
      close: () => Promise.resolve(),
    };
    const images = await pngs(4);
    let go!: () => void;
    const l = await loop(fixed, { maxSize: 4, maxWaitMs: 0 }, 1, new Promise<void>((r) => (go = r)));
    for (const [i, img] of images.entries()) await l.push.send(jobFrames(i === 2 ? 'boom' : `j${i}`, img));
    await sleep(LOOPBACK_MS);
    go();
    await waitFor('4 jobs out', () => l.out.length === 4, 5000);
    await l.stop();
    assert.deepEqual(calls, ['j0', 'j1', 'boom', 'j3'], 'in arrival order, one call each');
    assert.deepEqual(
      l.out.map((j) => [j.meta.id, j.meta.error?.code ?? j.meta.width]),
      [['j0', 20], ['j1', 21], ['boom', 'BAD_IMAGE'], ['j3', 23]],
    );
    // In a loop a job's time in the stage includes the jobs before it in its batch.
    assert.ok(l.out[3]!.meta.timings.detect! >= l.out[0]!.meta.timings.detect!);
  });
});

describe('the run loop itself', () => {
  for (const [batch, batched] of [
    [{ maxSize: 1, maxWaitMs: 0 }, false],
    [{ maxSize: 3, maxWaitMs: 20 }, false],
    [{ maxSize: 3, maxWaitMs: 20 }, true],
  ] as const) {
    test(`a failed job that cannot even be passed on costs that job only (batch.max_size ${batch.maxSize}${batched ? ', processBatch' : ''}): dropped, its slot back, its batch and the loop go on`, async () => {
      const inner = new NoopProcessor('noop', true, 1e8);
      const process = (job: Job) => (String(job.meta.id).startsWith('doom') ? Promise.reject(new BadImageError('not an image')) : inner.process(job));
      const calls: number[] = [];
      const failing: StageProcessor = {
        name: 'failing',
        describe: () => ({}),
        process,
        close: () => Promise.resolve(),
        ...(batched
          ? {
              processBatch: (jobs: Job[]) => {
                calls.push(jobs.length);
                return Promise.allSettled(jobs.map(process));
              },
            }
          : {}),
      };
      // A bug in a stage's onFailure: the failure cannot be turned into something to pass on.
      const onFailure = (job: Job): Job => {
        if (String(job.meta.id).startsWith('doom')) throw new Error('cannot encode this failure');
        return job;
      };
      const images = await pngs(3);
      // Two slots and four doomed jobs (one failed upstream already): if a lost job kept its
      // slot, stopped the loop or took the rest of its batch with it, the good jobs after it
      // would never come out.
      const l = await loop(failing, batch, 2, undefined, onFailure);
      const ids = ['doom1', 'a', 'doom2', 'b', 'doom3', 'c', 'doom4'];
      for (const [i, id] of ids.entries()) {
        const upstream = id === 'doom4' ? { error: { code: 'BAD_IMAGE' as const, message: 'failed in an earlier stage' } } : {};
        await l.push.send(jobFrames(id, id === 'doom4' ? undefined : images[i % 3], upstream));
      }
      await waitFor('the three good jobs out', () => l.out.length === 3, 5000);
      await waitFor('the four doomed jobs dropped', () => l.dropped.length === 4, 5000);
      const stats = await l.stop();
      assert.deepEqual(l.out.map((j) => j.meta.id).sort(), ['a', 'b', 'c']);
      // dropped() is how broker mode gives the replica's credit back.
      assert.deepEqual([...l.dropped].sort(), ['doom1', 'doom2', 'doom3', 'doom4']);
      assert.deepEqual({ received: stats.received, failed: stats.failed, dropped: stats.dropped }, { received: 7, failed: 3, dropped: 4 });
      if (batched) assert.ok(calls.some((n) => n > 1), `processBatch got several jobs at once (${calls.join(', ')})`);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Whole pipelines.

/** Sends every request at once on one DEALER; returns every reply that came within `ms` (extras included). */
async function sendAll(endpoint: string, requests: { id: string; image: Buffer }[], ms: number): Promise<Reply[]> {
  const dealer = new zmq.Dealer({ linger: 0, sendHighWaterMark: 10_000, receiveHighWaterMark: 10_000 });
  dealer.connect(endpoint);
  try {
    for (const r of requests) await dealer.send([Buffer.alloc(0), header({ id: r.id, timeout_ms: ms }), r.image]);
    const replies: Reply[] = [];
    const t0 = Date.now();
    // Wait for one reply each, then a little longer: a second reply to anything would show up.
    let extraUntil = Infinity;
    while (Date.now() < Math.min(t0 + ms + 2000, extraUntil)) {
      dealer.receiveTimeout = Math.max(1, Math.min(t0 + ms + 2000, extraUntil) - Date.now());
      let frames: Buffer[];
      try {
        frames = await dealer.receive();
      } catch {
        break;
      }
      replies.push(decodeReply(frames[frames.length - 1]!));
      if (replies.length === requests.length) extraUntil = Date.now() + 300;
    }
    return replies;
  } finally {
    dealer.close();
  }
}

/** Exactly one reply per request, matched by id. */
function oneEach(requests: { id: string }[], replies: Reply[]): Map<string, Reply> {
  const byId = new Map<string, Reply>();
  for (const r of replies) {
    assert.ok(!byId.has(String(r.id)), `a second reply for ${String(r.id)}`);
    byId.set(String(r.id), r);
  }
  assert.deepEqual([...byId.keys()].sort(), requests.map((r) => r.id).sort(), 'one reply per request, ids matched');
  return byId;
}

/** The stage's cross-request batches so far: how many, and how many jobs they held. */
async function jobBatches(base: number, stage: 'detect' | 'classify'): Promise<{ count: number; sum: number }> {
  const { body } = await getText(`http://127.0.0.1:${metricsPort(base, stage)}/metrics`);
  const value = (suffix: string) => {
    const line = body.split('\n').find((l) => l.startsWith(`framepipe_batch_size_${suffix}{`) && l.includes('model="jobs"'));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  return { count: value('count'), sum: value('sum') };
}

describe('noop pipeline with a synthetic batched model (detect.model.delay_ms per batch)', () => {
  for (const [size, wait] of [
    [1, 0],
    [4, 5],
    [8, 50],
  ] as const) {
    test(`batch.max_size ${size}, max_wait_ms ${wait}: 24 requests, each its own reply; a bad image fails alone`, async () => {
      const base = await freeMetricsBase();
      const pipe = await startPipeline('noop', [
        `metrics.port=${base}`,
        'detect.model.decode=true',
        'detect.model.delay_ms=40',
        `detect.batch.max_size=${size}`,
        `detect.batch.max_wait_ms=${wait}`,
        'log.level=warn',
      ]);
      try {
        const images = await pngs(23);
        const requests = images.map((image, i) => ({ id: `img${i}`, image }));
        requests.splice(11, 0, { id: 'bad', image: images[0]!.subarray(0, 50) });
        const byId = oneEach(requests, await sendAll(pipe.endpoint, requests, 20_000));
        for (const [id, r] of byId) {
          if (id === 'bad') {
            assert.equal(r.ok, false);
            if (!r.ok) assert.equal(r.error.code, 'BAD_IMAGE');
            continue;
          }
          assert.equal(r.ok, true, JSON.stringify(r));
          const i = Number(id.slice(3));
          if (r.ok) assert.deepEqual([r.width, r.height], [20 + i, 10 + 2 * i], `${id} carries its own image's size`);
        }
        const batches = await jobBatches(base, 'detect');
        if (size === 1) {
          assert.equal(batches.count, 0, 'no batching: no batch sizes observed');
        } else {
          assert.equal(batches.sum, 24, 'every job went through exactly one batch');
          // 24 requests at once against a 40 ms stage: the backlog fills batches.
          assert.ok(batches.count < 24 && batches.count >= Math.ceil(24 / size), `${batches.count} batches for 24 jobs`);
        }
      } finally {
        await pipe.stop();
      }
    });
  }

  test('broker mode: the replica takes concurrency × max_size credit, so batches fill', async () => {
    const base = await freeMetricsBase();
    const pipe = await startPipeline('noop', [
      'transport.mode=broker',
      `metrics.port=${base}`,
      'detect.model.decode=true',
      'detect.model.delay_ms=40',
      'detect.batch.max_size=4',
      'detect.batch.max_wait_ms=20',
      'log.level=warn',
    ]);
    try {
      const images = await pngs(16);
      const requests = images.map((image, i) => ({ id: `img${i}`, image }));
      const byId = oneEach(requests, await sendAll(pipe.endpoint, requests, 20_000));
      for (const [id, r] of byId) {
        assert.equal(r.ok, true, JSON.stringify(r));
        if (r.ok) assert.equal(r.width, 20 + Number(id.slice(3)));
      }
      const batches = await jobBatches(base, 'detect');
      assert.equal(batches.sum, 16);
      // With credit 1 (concurrency alone) every batch would hold one job.
      assert.ok(batches.count < 16, `${batches.count} batches for 16 jobs`);
    } finally {
      await pipe.stop();
    }
  });
});

/** What identifies an OCR reply: its lines' text, in reading order. */
const ocrKey = (dets: Detection[]) => dets.map((d) => d.text ?? '');

describe('OCR profile: text lines of several requests share recognizer batches', () => {
  const dir = path.join(repoRoot, 'samples');
  const files = readdirSync(dir).filter((f) => /\.(png|jpe?g)$/.test(f));
  const images = files.map((f) => readFileSync(path.join(dir, f)));
  const alone = new Map<string, string[]>();

  before(async () => {
    // Reference: each image sent alone, batching off.
    const pipe = await startPipeline('ocr', ['log.level=warn']);
    try {
      for (const [i, f] of files.entries()) {
        const [r] = await sendAll(pipe.endpoint, [{ id: f, image: images[i]! }], 60_000);
        assert.ok(r?.ok, `${f} alone: ${JSON.stringify(r)}`);
        if (r?.ok) alone.set(f, ocrKey(r.detections));
      }
    } finally {
      await pipe.stop();
    }
    assert.ok(new Set([...alone.values()].map((v) => v.join('\n'))).size === files.length, 'the samples read differently, so a mix-up shows');
  });

  for (const [size, wait] of [
    [4, 0],
    [8, 5],
    [4, 50],
  ] as const) {
    test(`classify.batch.max_size ${size}, max_wait_ms ${wait}: every reply reads its own image`, async () => {
      const base = await freeMetricsBase();
      const pipe = await startPipeline('ocr', [
        `metrics.port=${base}`,
        `classify.batch.max_size=${size}`,
        `classify.batch.max_wait_ms=${wait}`,
        'detect.batch.max_size=4',
        `detect.batch.max_wait_ms=${wait}`,
        'log.level=warn',
      ]);
      try {
        // Every sample twice, interleaved, plus one bad image in the middle.
        const requests = [...files, ...files].map((f, k) => ({ id: `${f}#${k}`, image: images[k % files.length]! }));
        requests.splice(5, 0, { id: 'bad', image: images[0]!.subarray(0, 100) });
        const byId = oneEach(requests, await sendAll(pipe.endpoint, requests, 120_000));
        for (const [id, r] of byId) {
          if (id === 'bad') {
            assert.equal(r.ok ? 'OK' : r.error.code, 'BAD_IMAGE');
            continue;
          }
          assert.equal(r.ok, true, JSON.stringify(r));
          if (r.ok) assert.deepEqual(ocrKey(r.detections), alone.get(id.split('#')[0]!), `${id} reads as when sent alone`);
        }
        const batches = await jobBatches(base, 'classify');
        assert.equal(batches.sum, requests.length - 1, 'every good job went through exactly one classify batch');
        // Recognition is the slow stage: its backlog fills batches, so requests really were mixed.
        assert.ok(batches.count < batches.sum, `${batches.count} classify batches for ${batches.sum} jobs`);
      } finally {
        await pipe.stop();
      }
    });
  }
});

const skip = hasShared ? false : 'SKIPPED: ../shared is absent (real models and photos live there)';

/** What identifies an objects reply: labels, rounded boxes and each box's top class. */
function objectsKey(dets: Detection[]): { label: string; box: number[]; top: string | undefined; score: number }[] {
  return dets.map((d) => ({ label: d.label, box: d.box.map(Math.round), top: d.classes?.[0]?.label, score: d.classes?.[0]?.score ?? 0 }));
}

describe('objects profile: crops of several requests share MobileNetV2 calls', { skip }, () => {
  const dir = path.join(sharedDir, 'images');
  const files = hasShared ? readdirSync(dir).filter((f) => !f.startsWith('text_')) : [];
  const images = files.map((f) => readFileSync(path.join(dir, f)));
  const alone = new Map<string, ReturnType<typeof objectsKey>>();
  const models = `models_dir=${path.join(sharedDir, 'models')}`;

  before(async () => {
    const pipe = await startPipeline('objects', [models, 'log.level=warn']);
    try {
      for (const [i, f] of files.entries()) {
        const [r] = await sendAll(pipe.endpoint, [{ id: f, image: images[i]! }], 30_000);
        assert.ok(r?.ok, `${f} alone: ${JSON.stringify(r)}`);
        if (r?.ok) alone.set(f, objectsKey(r.detections));
      }
    } finally {
      await pipe.stop();
    }
  });

  let pipe: TestPipeline | undefined;
  after(async () => {
    await pipe?.stop();
  });

  for (const [size, wait] of [
    [1, 0],
    [8, 0],
    [4, 5],
    [8, 50],
  ] as const) {
    test(`classify.batch.max_size ${size}, max_wait_ms ${wait}: every reply has its own boxes and classes`, async () => {
      const base = await freeMetricsBase();
      pipe = await startPipeline('objects', [
        models,
        `metrics.port=${base}`,
        `detect.batch.max_size=${size}`,
        `detect.batch.max_wait_ms=${wait}`,
        `classify.batch.max_size=${size}`,
        `classify.batch.max_wait_ms=${wait}`,
        'log.level=warn',
      ]);
      try {
        const requests = [...files, ...files, ...files].map((f, k) => ({ id: `${f}#${k}`, image: images[k % files.length]! }));
        requests.splice(7, 0, { id: 'bad', image: images[1]!.subarray(0, 2000) });
        const byId = oneEach(requests, await sendAll(pipe.endpoint, requests, 60_000));
        for (const [id, r] of byId) {
          if (id === 'bad') {
            assert.equal(r.ok ? 'OK' : r.error.code, 'BAD_IMAGE');
            continue;
          }
          assert.equal(r.ok, true, JSON.stringify(r));
          if (!r.ok) continue;
          const got = objectsKey(r.detections);
          const want = alone.get(id.split('#')[0]!)!;
          assert.deepEqual(
            got.map(({ label, box, top }) => ({ label, box, top })),
            want.map(({ label, box, top }) => ({ label, box, top })),
            `${id}: same boxes and top classes as when sent alone`,
          );
          // A batched int8 run may round a little differently; a crop of another image would not be close.
          got.forEach((g, i) => assert.ok(Math.abs(g.score - want[i]!.score) < 0.02, `${id} box ${i}: ${g.score} vs ${want[i]!.score}`));
        }
        const batches = await jobBatches(base, 'classify');
        if (size > 1) assert.equal(batches.sum, requests.length - 1, 'every good job went through exactly one classify batch');
        // Waiting 50 ms gathers what detect lets go of meanwhile: requests really were mixed.
        if (wait === 50) assert.ok(batches.count < batches.sum, `${batches.count} classify batches for ${batches.sum} jobs`);
      } finally {
        await pipe.stop();
        pipe = undefined;
      }
    });
  }
});
