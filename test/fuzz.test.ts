// Bad input fuzz: 10,000+ random and mutated messages at ingest's client socket (REQ and
// DEALER): random frames, bit-flipped valid headers, a wrong type in every header field, dozens
// of frames, truncated and corrupted images, zero-length frames, decompression-bomb headers.
// Every message must get one reply with a valid error code (or ok), no process may die, and
// memory must stay bounded. Counts per code are printed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import * as zmq from 'zeromq';
import { Packr } from 'msgpackr';
import { ErrorCode } from '../src/protocol/errors.js';
import { header, startPipeline, type TestPipeline } from './helpers.js';
import { bombPng } from './bomb.js';

const MESSAGES = Number(process.env.FUZZ_MESSAGES ?? 10_000);
const SOCKETS = 8;
const packr = new Packr({ useRecords: false, moreTypes: false });

/** mulberry32: a seeded PRNG, so a failure can be replayed (FUZZ_SEED). */
function prng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const rand = prng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

function flipBits(buf: Buffer, flips: number): Buffer {
  const out = Buffer.from(buf);
  for (let i = 0; i < flips && out.length > 0; i++) out[int(out.length)]! ^= 1 << int(8);
  return out;
}

const FIELDS = ['id', 'image', 'stream', 'frame', 'timeout_ms', 'annotate', 'min_score', 'max_detections', 'shape', 'dtype', 'pixels', 'shm'] as const;
const WRONG: (() => unknown)[] = [
  () => ({ a: 1 }),
  () => [1, 2, 3],
  () => true,
  () => -1,
  () => 1.5,
  () => 'text',
  () => 'x'.repeat(300),
  () => Buffer.from('bin'),
  () => null,
  () => 2 ** 53,
  () => -(2 ** 40),
  () => NaN,
  () => [60000, 60000, 3],
  () => [[1], 'a'],
];

type Maker = (jpeg: Buffer) => Buffer[];
const makers: Record<string, Maker> = {
  'random frames': () => Array.from({ length: 1 + int(4) }, () => bytes(int(200))),
  'bit-flipped header': (jpeg) => [flipBits(header({ id: int(1e6), timeout_ms: 5000, stream: 'cam', frame: 3 }), 1 + int(3)), jpeg],
  'wrong field type': (jpeg) => {
    const field = pick(FIELDS);
    const h: Record<string, unknown> = { id: 'w', timeout_ms: 5000, [field]: pick(WRONG)() };
    return field === 'image' ? [packr.pack(h)] : [packr.pack(h), jpeg];
  },
  'dozens of frames': (jpeg) => [header({ id: 'many' }), ...Array.from({ length: 12 + int(50) }, () => (rand() < 0.5 ? jpeg : bytes(int(50))))],
  'truncated image': (jpeg) => [header({ id: 't', timeout_ms: 5000 }), jpeg.subarray(0, int(jpeg.length))],
  'corrupted image': (jpeg) => [header({ id: 'c', timeout_ms: 5000 }), flipBits(jpeg, 1 + int(20))],
  'zero-length frames': (jpeg) => pick([[Buffer.alloc(0)], [Buffer.alloc(0), Buffer.alloc(0)], [header({ id: 'z' }), Buffer.alloc(0)], [Buffer.alloc(0), jpeg], [header({ id: 'z' }), Buffer.alloc(0), Buffer.alloc(0)]]),
  'decompression bomb': () =>
    pick([
      [header({ id: 'b', timeout_ms: 5000 }), bombPng(60000, 60000)],
      [header({ id: 'b', timeout_ms: 5000 }), bombPng(1, 4_000_000_000)],
      [header({ id: 'raw', shape: [60000, 60000, 3], dtype: 'uint8' }), bytes(64)],
      [header({ id: 'raw', shape: [2, 2, 3], dtype: 'uint8' }), bytes(int(20))],
    ]),
  'not a map': () => [packr.pack(pick([[1, 2], 7, 'str', null, true, Buffer.from('b')])), bytes(10)],
  'imagezmq json': (jpeg) => [Buffer.from(pick(['{"msg": "cam"}', '{"msg": 5}', '{not json', '{"msg":"x","shape":[9,9,3],"dtype":"uint8"}', '{}'])), jpeg.subarray(0, int(jpeg.length))],
  valid: (jpeg) => [header({ id: 'ok', timeout_ms: 5000 }), jpeg],
};

const VALID_CODES = new Set<string>(Object.values(ErrorCode));

/** The reply's code ('ok' for a result), or throws if it is not a valid reply. */
function classify(reply: Buffer): string {
  const r = (reply[0] === 0x7b ? JSON.parse(reply.toString()) : packr.unpack(reply)) as { ok?: unknown; error?: { code?: unknown } };
  if (r.ok === true) return 'ok';
  assert.equal(r.ok, false, 'reply has ok: false');
  assert.ok(VALID_CODES.has(String(r.error?.code)), `valid error code: ${JSON.stringify(r.error)}`);
  return String(r.error!.code);
}

function vm(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

let pipe: TestPipeline;
before(async () => {
  pipe = await startPipeline('noop', ['detect.model.decode=true', 'limits.max_pixels=4000000', 'limits.max_message_bytes=1000000', 'log.level=fatal']);
});
after(async () => {
  await pipe?.stop();
});

test(`fuzz: ${MESSAGES} bad and mutated messages, each answered with a valid code, no process dies, memory bounded`, async (t) => {
  t.diagnostic(`seed ${SEED} (FUZZ_SEED=${SEED} replays it)`);
  const jpeg = await sharp({ create: { width: 48, height: 32, channels: 3, background: '#808080' } }).jpeg().toBuffer();
  const pids = pipe.procs.map((p) => p.child.pid!);
  const before = pids.map(vm);
  const counts: Record<string, number> = {};
  const byKind: Record<string, number> = {};
  const failures: string[] = [];
  let next = 0;
  const kinds = Object.keys(makers);

  const worker = async (w: number) => {
    // Half REQ, half DEALER (a DEALER's message is sent with or without the empty delimiter).
    const useReq = w % 2 === 0;
    let sock: zmq.Request | zmq.Dealer = useReq ? new zmq.Request({ linger: 0, receiveTimeout: 8000 }) : new zmq.Dealer({ linger: 0, receiveTimeout: 8000 });
    sock.connect(pipe.endpoint);
    try {
      while (next < MESSAGES) {
        const i = next++;
        const kind = kinds[i % kinds.length]!;
        byKind[kind] = (byKind[kind] ?? 0) + 1;
        let frames = makers[kind]!(jpeg);
        if (!useReq && rand() < 0.5) frames = [Buffer.alloc(0), ...frames];
        await sock.send(frames);
        let reply: Buffer[];
        try {
          reply = await sock.receive();
        } catch {
          failures.push(`${kind}: no reply (${frames.length} frames)`);
          sock.close(); // a REQ without its reply is stuck: a new one (Lazy Pirate)
          sock = useReq ? new zmq.Request({ linger: 0, receiveTimeout: 8000 }) : new zmq.Dealer({ linger: 0, receiveTimeout: 8000 });
          sock.connect(pipe.endpoint);
          continue;
        }
        try {
          const code = classify(reply[reply.length - 1]!);
          counts[code] = (counts[code] ?? 0) + 1;
        } catch (err) {
          failures.push(`${kind}: ${(err as Error).message}`);
        }
      }
    } finally {
      sock.close();
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: SOCKETS }, (_, w) => worker(w)));
  const seconds = (Date.now() - t0) / 1000;
  const afterward = pids.map(vm);

  t.diagnostic(`${MESSAGES} messages in ${seconds.toFixed(1)} s; replies by code ${JSON.stringify(counts)}`);
  t.diagnostic(`messages by kind ${JSON.stringify(byKind)}`);
  pipe.procs.forEach((p, i) =>
    t.diagnostic(`${p.stage}: RSS ${before[i]!.rss.toFixed(0)} → ${afterward[i]!.rss.toFixed(0)} MiB, peak ${afterward[i]!.hwm.toFixed(0)} MiB`),
  );
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} messages without a valid reply`);
  assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), MESSAGES, 'one reply per message');
  for (const p of pipe.procs) assert.equal(p.child.exitCode, null, `${p.stage} still running`);
  // Bounded: nothing grows with the number of messages (a leak of even 10 KB each would show).
  afterward.forEach((m, i) => assert.ok(m.rss < before[i]!.rss + 150 && m.hwm < 600, `${pipe.procs[i]!.stage}: RSS ${m.rss.toFixed(0)} MiB, peak ${m.hwm.toFixed(0)} MiB`));
});
