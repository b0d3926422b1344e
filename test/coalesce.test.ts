// Several stage-to-stage messages in one ZeroMQ message (transport.coalesce): the format, a
// writer on a real socket (the first message of a turn at once, the rest of the turn together,
// order kept, every send settled), and a real stage that meets a malformed batch and goes on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as zmq from 'zeromq';
import { packMessages, unpacked, unpackMessages } from '../src/transport/coalesce.js';
import { until } from '../src/transport/receive.js';
import { SocketWriter } from '../src/transport/writer.js';
import { freePorts, header, reqOnce, startPipeline, type TestPipeline } from './helpers.js';

const msg = (...parts: string[]) => parts.map((p) => Buffer.from(p));
const text = (messages: Buffer[][]) => messages.map((m) => m.map((f) => f.toString()));

describe('the batch format', () => {
  test('messages of any frame count go out and come back as they were', () => {
    const messages = [msg('a'), msg('b', 'c', 'd'), msg('e', 'f')];
    const frames = packMessages(messages);
    assert.equal(frames.length, 7, 'one header frame, then every frame in order');
    assert.deepEqual(text(unpackMessages(frames)), [['a'], ['b', 'c', 'd'], ['e', 'f']]);
  });

  test('a plain message is one message, even one that starts like a batch but is too short to be one', () => {
    assert.deepEqual(text(unpackMessages(msg('{"job":1}', 'x'))), [['{"job":1}', 'x']]);
    assert.deepEqual(text(unpackMessages(msg('FPB1'))), [['FPB1']]);
  });

  test('a batch whose counts do not fit comes back whole, for the decoder to reject', () => {
    const good = packMessages([msg('a'), msg('b')]);
    const cases: Buffer[][] = [
      [good[0]!, good[1]!], // a frame missing
      [...good, Buffer.from('extra')],
      [Buffer.concat([Buffer.from('FPB1'), Buffer.from([0xc1])]), Buffer.from('a')], // not msgpack
      [Buffer.concat([Buffer.from('FPB1'), Buffer.from([0x91, 0x00])]), Buffer.from('a')], // a count of 0
      [Buffer.concat([Buffer.from('FPB1'), Buffer.from([0xa1, 0x61])]), Buffer.from('a')], // not an array
    ];
    for (const frames of cases) assert.deepEqual(unpackMessages(frames), [frames]);
  });
});

describe('SocketWriter with coalesce, on a real PUSH/PULL pair', () => {
  let push: zmq.Push;
  let pull: zmq.Pull;
  before(async () => {
    const [port] = await freePorts(1);
    pull = new zmq.Pull({ linger: 0 });
    await pull.bind(`tcp://127.0.0.1:${port}`);
    push = new zmq.Push({ linger: 0 });
    push.connect(`tcp://127.0.0.1:${port}`);
  });
  after(() => {
    push.close();
    pull.close();
  });

  test('the first message of a turn goes alone, the rest of the turn in batches of at most `coalesce`, in order', async () => {
    const writer = new SocketWriter(push, 100, 4);
    const sent = Array.from({ length: 10 }, (_, i) => writer.send(msg(`job ${i}`, `part ${i}`)));
    await Promise.all(sent);
    const raw: Buffer[][] = [];
    for (let i = 0; i < 4; i++) raw.push(await pull.receive());
    assert.deepEqual(
      raw.map((m) => unpackMessages(m).length),
      [1, 4, 4, 1],
    );
    const jobs = raw.flatMap((m) => unpackMessages(m)).map((m) => m[0]!.toString());
    assert.deepEqual(jobs, Array.from({ length: 10 }, (_, i) => `job ${i}`));
  });

  test('without coalesce every message goes alone', async () => {
    const writer = new SocketWriter(push, 100);
    await Promise.all(Array.from({ length: 3 }, (_, i) => writer.send(msg(`solo ${i}`))));
    const raw: Buffer[][] = [];
    for (let i = 0; i < 3; i++) raw.push(await pull.receive());
    assert.deepEqual(text(raw), [['solo 0'], ['solo 1'], ['solo 2']]);
  });

  test('a reader gets the messages one by one (unpacked)', async () => {
    const writer = new SocketWriter(push, 100, 16);
    await Promise.all(Array.from({ length: 6 }, (_, i) => writer.send(msg(`m ${i}`))));
    const ac = new AbortController();
    const got: string[] = [];
    for await (const m of unpacked(until(pull, ac.signal))) {
      got.push(m[0]!.toString());
      if (got.length === 6) break;
    }
    assert.deepEqual(got, ['m 0', 'm 1', 'm 2', 'm 3', 'm 4', 'm 5']);
  });
});

describe('a stage that meets malformed batches', () => {
  let pipe: TestPipeline;
  before(async () => {
    pipe = await startPipeline('noop', ['detect.model.decode=true']);
  });
  after(async () => {
    await pipe?.stop();
  });

  test('drops them and goes on; requests in flight at once all come back right', async () => {
    const detect = String(pipe.procs.find((p) => p.stage === 'detect')!.facts.input);
    const push = new zmq.Push({ linger: 0 });
    push.connect(detect);
    try {
      const good = packMessages([msg('not a job'), msg('x', 'y')]);
      await push.send([good[0]!, good[1]!]);
      await push.send(good);
      await push.send([Buffer.concat([Buffer.from('FPB1'), Buffer.from([0xc1])]), Buffer.from('a')]);
    } finally {
      push.close();
    }
    const { default: sharp } = await import('sharp');
    const images = await Promise.all(
      Array.from({ length: 24 }, (_, i) => sharp({ create: { width: 10 + i, height: 8, channels: 3, background: '#777' } }).png().toBuffer()),
    );
    const replies = await Promise.all(images.map((image, i) => reqOnce(pipe.endpoint, [header({ id: i }), image])));
    assert.deepEqual(
      replies.map((r) => [r.id, r.ok && r.width]),
      images.map((_, i) => [i, 10 + i]),
    );
    for (const p of pipe.procs) assert.equal(p.child.exitCode, null, `${p.stage} still running`);
  });
});
