// Protocol v1 against real stage processes on loopback: envelopes, exactly one reply per
// request, and a clear error for every kind of bad input, with no stage dying of any of them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import * as zmq from 'zeromq';
import { decodeReply } from '../src/protocol/request.js';
import type { Reply } from '../src/protocol/types.js';
import { collect, header, reqOnce, startPipeline, type TestPipeline } from './helpers.js';
import { bombPng } from './bomb.js';

describe('protocol v1 (noop profile, real processes)', () => {
  let pipe: TestPipeline;
  let jpeg: Buffer;

  before(async () => {
    pipe = await startPipeline('noop', ['detect.model.decode=true', 'limits.max_pixels=4000000', 'limits.max_message_bytes=1000000']);
    jpeg = await sharp({ create: { width: 320, height: 200, channels: 3, background: '#3366cc' } }).jpeg().toBuffer();
  });
  after(async () => {
    await pipe?.stop();
  });

  test('REQ: image as frame 2; id, stream and frame echoed; size of the decoded image', async () => {
    const reply = await reqOnce(pipe.endpoint, [header({ id: 'a-1', stream: 'cam', frame: 7 }), jpeg]);
    assert.equal(reply.ok, true);
    assert.equal(reply.id, 'a-1');
    assert.equal(reply.stream, 'cam');
    assert.equal(reply.frame, 7);
    if (!reply.ok) return;
    assert.equal(reply.width, 320);
    assert.equal(reply.height, 200);
    assert.deepEqual(reply.detections, []);
    assert.equal(typeof reply.timings_ms.total, 'number');
    // The per-hop split: every stage's wait, and waits plus compute fit inside the total.
    let parts = 0;
    for (const key of ['detect_wait', 'detect', 'classify_wait', 'classify', 'sink_wait']) {
      const v = reply.timings_ms[key];
      assert.ok(typeof v === 'number' && v >= 0, `timings_ms.${key} = ${v}`);
      parts += v;
    }
    assert.ok(parts <= reply.timings_ms.total! + 1, `parts ${parts} within total ${reply.timings_ms.total}`);
  });

  test('unknown header fields are ignored', async () => {
    const reply = await reqOnce(pipe.endpoint, [header({ id: 'u', future_option: { a: [1, 2] }, colour: 'blue' }), jpeg]);
    assert.equal(reply.ok, true);
  });

  test("REQ: image inside the header's `image` field; integer id", async () => {
    const reply = await reqOnce(pipe.endpoint, [header({ id: 42, image: jpeg })]);
    assert.equal(reply.ok, true);
    assert.equal(reply.id, 42);
  });

  test('annotate: true returns a JPEG of the image in `annotated`', async () => {
    const reply = await reqOnce(pipe.endpoint, [header({ id: 'ann', annotate: true }), jpeg]);
    assert.equal(reply.ok, true);
    if (!reply.ok) return;
    assert.ok(reply.annotated instanceof Uint8Array, 'annotated is bin');
    const meta = await sharp(Buffer.from(reply.annotated)).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.width, 320);
    const plain = await reqOnce(pipe.endpoint, [header({ id: 'plain' }), jpeg]);
    assert.equal('annotated' in plain, false, 'no annotation unless asked');
  });

  test('DEALER with and without the empty delimiter: the reply uses the same envelope shape', async () => {
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(pipe.endpoint);
    try {
      await dealer.send([Buffer.alloc(0), header({ id: 'with' }), jpeg]);
      const [a] = await collect(dealer, 3000).then((r) => r.slice(0, 1));
      assert.equal(a!.length, 2, 'delimiter + reply');
      assert.equal(a![0]!.length, 0);
      assert.equal(decodeReply(a![1]!).id, 'with');
      await dealer.send([header({ id: 'without' }), jpeg]);
      const [b] = await collect(dealer, 3000).then((r) => r.slice(0, 1));
      assert.equal(b!.length, 1, 'reply alone');
      assert.equal(decodeReply(b![0]!).id, 'without');
    } finally {
      dealer.close();
    }
  });

  test('DEALER pipelining: 200 requests in flight, each answered exactly once', async () => {
    const dealer = new zmq.Dealer({ linger: 0, sendHighWaterMark: 1000 });
    dealer.connect(pipe.endpoint);
    try {
      for (let i = 0; i < 200; i++) await dealer.send([Buffer.alloc(0), header({ id: i }), jpeg]);
      const replies = await collectN(dealer, 200, 20_000);
      const ids = replies.map((r) => r.id as number).sort((x, y) => x - y);
      assert.deepEqual(ids, Array.from({ length: 200 }, (_, i) => i));
      assert.deepEqual(replies.filter((r) => !r.ok), [], 'all ok');
      assert.equal((await collect(dealer, 300)).length, 0, 'no extra replies');
    } finally {
      dealer.close();
    }
  });

  const bad: [string, () => Buffer[], string][] = [
    ['header is not msgpack', () => [Buffer.from([0xc1, 0x00, 0xff])], 'BAD_REQUEST'],
    ['header is a msgpack array', () => [header([1, 2] as unknown as Record<string, unknown>)], 'BAD_REQUEST'],
    ['header is a msgpack string', () => [Buffer.from([0xa3, 0x61, 0x62, 0x63]), Buffer.from('x')], 'BAD_REQUEST'],
    ['no image at all', () => [header({ id: 'n' })], 'BAD_REQUEST'],
    ['empty image frame', () => [header({ id: 'n' }), Buffer.alloc(0)], 'BAD_REQUEST'],
    ['image given twice', () => [header({ id: 'n', image: Buffer.from([1]) }), Buffer.from([1])], 'BAD_REQUEST'],
    ['id of a wrong type', () => [header({ id: { a: 1 } }), Buffer.from([1])], 'BAD_REQUEST'],
    ['frame of a wrong type', () => [header({ id: 'n', frame: 'x' }), Buffer.from([1])], 'BAD_REQUEST'],
    ['negative timeout_ms', () => [header({ id: 'n', timeout_ms: -5 }), Buffer.from([1])], 'BAD_REQUEST'],
    ['image field that is a string', () => [header({ id: 'n', image: 'abc' })], 'BAD_REQUEST'],
    ['too many frames', () => [header({ id: 'n' }), Buffer.from([1]), Buffer.from([2]), Buffer.from([3])], 'BAD_REQUEST'],
    ['random bytes as the image', () => [header({ id: 'n' }), Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 251))], 'BAD_IMAGE'],
    ['a PNG that declares 60000×60000 pixels', () => [header({ id: 'n' }), bombPng()], 'TOO_LARGE'],
    ['a message above max_message_bytes', () => [header({ id: 'n' }), Buffer.alloc(1_200_000, 1)], 'TOO_LARGE'],
  ];
  for (const [name, frames, code] of bad) {
    test(`bad input: ${name} → ${code}`, async () => {
      const reply = await reqOnce(pipe.endpoint, frames());
      assert.equal(reply.ok, false, JSON.stringify(reply));
      if (reply.ok) return;
      assert.equal(reply.error.code, code, reply.error.message);
      assert.ok(reply.error.message.length > 10, 'message explains the problem');
    });
  }

  test('bad input: a truncated JPEG → BAD_IMAGE, and the id is echoed', async () => {
    const big = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#000000', noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).jpeg().toBuffer();
    const reply = await reqOnce(pipe.endpoint, [header({ id: 'trunc' }), big.subarray(0, Math.floor(big.length / 2))]);
    assert.equal(reply.ok, false);
    assert.equal(reply.id, 'trunc');
    if (!reply.ok) assert.equal(reply.error.code, 'BAD_IMAGE');
  });

  test('after all the bad input every stage is alive and serving', async () => {
    for (const p of pipe.procs) assert.equal(p.child.exitCode, null, `${p.stage} still running`);
    const reply = await reqOnce(pipe.endpoint, [header({ id: 'still' }), jpeg]);
    assert.equal(reply.ok, true);
  });
});

describe('deadlines and overload (noop profile with a slow detect)', () => {
  let pipe: TestPipeline;
  before(async () => {
    pipe = await startPipeline('noop', ['detect.model.delay_ms=300', 'limits.max_inflight=3', 'detect.concurrency=1']);
  });
  after(async () => {
    await pipe?.stop();
  });

  test('a request whose deadline passes gets TIMEOUT, and exactly one reply', async () => {
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(pipe.endpoint);
    try {
      await dealer.send([header({ id: 't', timeout_ms: 100 }), Buffer.from('img')]);
      const replies = (await collect(dealer, 1500)).map((f) => decodeReply(f[0]!));
      assert.equal(replies.length, 1, 'exactly one reply');
      assert.equal(replies[0]!.ok, false);
      if (!replies[0]!.ok) assert.equal(replies[0]!.error.code, 'TIMEOUT');
    } finally {
      dealer.close();
    }
  });

  test('more than max_inflight at once: the excess gets OVERLOADED at once, the rest succeeds', async () => {
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(pipe.endpoint);
    try {
      const t0 = Date.now();
      for (let i = 0; i < 10; i++) await dealer.send([header({ id: i, timeout_ms: 10_000 }), Buffer.from('img')]);
      const arrivals: number[] = [];
      const replies = await collectN(dealer, 10, 8000, arrivals);
      const overloaded = replies.filter((r) => !r.ok && r.error.code === 'OVERLOADED');
      // "At once": every refusal arrives before the first accepted request is answered (detect
      // takes 300 ms over it), however slow the machine.
      const firstOk = Math.min(...replies.flatMap((r, i) => (r.ok ? [arrivals[i]!] : [])));
      replies.forEach((r, i) => {
        if (!r.ok && r.error.code === 'OVERLOADED') assert.ok(arrivals[i]! < firstOk, `OVERLOADED after ${arrivals[i]! - t0} ms, first ok at ${firstOk - t0} ms`);
      });
      const ok = replies.filter((r) => r.ok);
      assert.equal(replies.length, 10);
      assert.equal(ok.length + overloaded.length, 10);
      assert.ok(overloaded.length >= 6, `${overloaded.length} overloaded`);
      assert.ok(ok.length >= 3, `${ok.length} ok`);
    } finally {
      dealer.close();
    }
  });
});

/** Up to `n` replies within `ms`; `arrivals` (if given) gets each one's arrival time. */
describe('limits.max_timeout_ms caps a client timeout', () => {
  let pipe: TestPipeline;
  before(async () => {
    pipe = await startPipeline('noop', ['detect.model.delay_ms=10000', 'limits.max_timeout_ms=150']);
  });
  after(async () => {
    await pipe?.stop();
  });

  test('timeout_ms 60000 against a cap of 150 ms: TIMEOUT well before the stage finishes', async () => {
    const t0 = Date.now();
    const reply = await reqOnce(pipe.endpoint, [header({ id: 'cap', timeout_ms: 60_000 }), Buffer.from('x')], 5000);
    assert.equal(reply.ok, false);
    if (!reply.ok) assert.deepEqual([reply.error.code, reply.error.message], ['TIMEOUT', 'no result within 150 ms'], 'the deadline ingest set is the cap');
    // The stage takes 10 s: a reply long before that is the cap's, whatever the host's stalls.
    assert.ok(Date.now() - t0 < 5000, `answered after ${Date.now() - t0} ms`);
  });
});

async function collectN(dealer: zmq.Dealer, n: number, ms: number, arrivals?: number[]): Promise<Reply[]> {
  const out: Reply[] = [];
  const until = Date.now() + ms;
  while (out.length < n && Date.now() < until) {
    dealer.receiveTimeout = Math.max(1, until - Date.now());
    try {
      const frames = await dealer.receive();
      out.push(decodeReply(frames[frames.length - 1]!));
      arrivals?.push(Date.now());
    } catch {
      break;
    }
  }
  return out;
}

describe('raw frames and imagezmq senders (noop profile, decoding)', () => {
  let pipe: TestPipeline;
  before(async () => {
    pipe = await startPipeline('noop', ['detect.model.decode=true', 'limits.max_pixels=1000000']);
  });
  after(async () => {
    await pipe?.stop();
  });

  test('a raw BGR frame with shape [h, w, 3] is taken as pixels', async () => {
    const reply = await reqOnce(pipe.endpoint, [header({ id: 'raw', shape: [40, 60, 3], dtype: 'uint8', pixels: 'bgr' }), Buffer.alloc(40 * 60 * 3, 9)]);
    assert.equal(reply.ok, true, JSON.stringify(reply));
    if (reply.ok) assert.deepEqual([reply.width, reply.height], [60, 40]);
  });

  test('a raw gray frame [h, w] draws in colour order: annotate works on it', async () => {
    const reply = await reqOnce(pipe.endpoint, [header({ id: 'g', shape: [30, 20], annotate: true }), Buffer.alloc(600, 200)]);
    assert.equal(reply.ok, true);
    if (reply.ok) assert.equal((await sharp(Buffer.from(reply.annotated!)).metadata()).width, 20);
  });

  const badRaw: [string, Record<string, unknown>, number, string][] = [
    ['bytes that do not match the shape', { shape: [40, 60, 3] }, 100, 'BAD_REQUEST'],
    ['4 channels', { shape: [2, 2, 4] }, 16, 'BAD_REQUEST'],
    ['a float dtype', { shape: [2, 2, 3], dtype: 'float32' }, 12, 'BAD_REQUEST'],
    ["pixels 'gray' with 3 channels", { shape: [2, 2, 3], pixels: 'gray' }, 12, 'BAD_REQUEST'],
    ['dtype without shape', { dtype: 'uint8' }, 12, 'BAD_REQUEST'],
    ['more pixels than max_pixels', { shape: [2000, 1000] }, 2_000_000, 'TOO_LARGE'],
  ];
  for (const [name, fields, bytes, code] of badRaw) {
    test(`raw frame with ${name} → ${code}`, async () => {
      const reply = await reqOnce(pipe.endpoint, [header({ id: name, ...fields }), Buffer.alloc(bytes, 1)]);
      assert.equal(reply.ok, false);
      assert.equal(reply.id, name);
      if (!reply.ok) assert.equal(reply.error.code, code, reply.error.message);
    });
  }

  /** imagezmq's ImageSender: REQ, frame 1 JSON, frame 2 the bytes, one reply frame. */
  async function imagezmq(json: Record<string, unknown>, payload: Buffer): Promise<Record<string, unknown>> {
    const req = new zmq.Request({ linger: 0, receiveTimeout: 10_000 });
    req.connect(pipe.endpoint);
    try {
      await req.send([Buffer.from(JSON.stringify(json)), payload]);
      const frames = await req.receive();
      assert.equal(frames.length, 1);
      return JSON.parse(frames[0]!.toString('utf8')) as Record<string, unknown>;
    } finally {
      req.close();
    }
  }

  test('imagezmq send_jpg: JSON header {msg}, JPEG frame → JSON reply with the stream name', async () => {
    const jpg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#123456' } }).jpeg().toBuffer();
    const reply = await imagezmq({ msg: 'garage-cam' }, jpg);
    assert.equal(reply.ok, true);
    assert.equal(reply.stream, 'garage-cam');
    assert.equal(reply.width, 64);
  });

  test('imagezmq send_image: dtype and shape, raw BGR → JSON reply', async () => {
    const reply = await imagezmq({ msg: 'pi', dtype: 'uint8', shape: [48, 64, 3] }, Buffer.alloc(48 * 64 * 3, 3));
    assert.equal(reply.ok, true);
    assert.equal(reply.height, 48);
  });

  test('imagezmq with a bad image gets a JSON error reply', async () => {
    const reply = await imagezmq({ msg: 'pi' }, Buffer.from('not a jpeg at all'));
    assert.equal(reply.ok, false);
    assert.equal((reply.error as { code: string }).code, 'BAD_IMAGE');
  });
});
