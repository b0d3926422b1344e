// until(): a socket's messages until an abort, over real sockets.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, test } from 'node:test';
import * as zmq from 'zeromq';
import { until } from '../src/transport/receive.js';

async function pair(): Promise<{ push: zmq.Push; pull: zmq.Pull; close(): void }> {
  const pull = new zmq.Pull({ linger: 0 });
  await pull.bind('tcp://127.0.0.1:*');
  const push = new zmq.Push({ linger: 0 });
  push.connect(pull.lastEndpoint!);
  return {
    push,
    pull,
    close() {
      push.close();
      pull.close();
    },
  };
}

describe('until (src/transport/receive.ts)', () => {
  test('yields every message in order, with one abort listener for the whole loop, removed at the end', async () => {
    const { push, pull, close } = await pair();
    const ac = new AbortController();
    const got: string[] = [];
    const listeners: number[] = [];
    const loop = (async () => {
      for await (const [frame] of until(pull, ac.signal)) {
        got.push(frame!.toString());
        listeners.push(getEventListeners(ac.signal, 'abort').length);
        if (got.length === 500) break;
      }
    })();
    for (let i = 0; i < 500; i++) await push.send(String(i));
    await loop;
    assert.deepEqual(got, Array.from({ length: 500 }, (_, i) => String(i)));
    assert.ok(listeners.every((n) => n === 1), 'one listener while looping, however many messages');
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0, 'break removes it');
    close();
  });

  test('an abort ends a loop waiting on an idle socket at once, and never closes the socket', async () => {
    const { push, pull, close } = await pair();
    const ac = new AbortController();
    let ended = false;
    const loop = (async () => {
      for await (const _ of until(pull, ac.signal)) assert.fail('nothing was sent');
      ended = true;
    })();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(ended, false);
    ac.abort();
    await loop;
    assert.equal(ended, true);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    assert.equal(pull.closed, false, 'until never closes the socket');
    // An aborted signal yields nothing more.
    for await (const _ of until(pull, ac.signal)) assert.fail('already aborted');
    close();
  });

  test('closing the socket under a pending receive ends the loop without an error', async () => {
    const { pull, close } = await pair();
    const ac = new AbortController();
    const loop = (async () => {
      let n = 0;
      for await (const _ of until(pull, ac.signal)) n++;
      return n;
    })();
    await new Promise((r) => setTimeout(r, 50));
    close();
    assert.equal(await loop, 0);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });

  test('a socket closed between messages ends the loop at the next call, without an error', async () => {
    const { push, pull, close } = await pair();
    const ac = new AbortController();
    const it = until(pull, ac.signal)[Symbol.asyncIterator]();
    await push.send('one');
    assert.deepEqual((await it.next()).value?.map(String), ['one']);
    close();
    assert.deepEqual(await it.next(), { done: true, value: undefined });
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });

  test('a second next() while one is pending is refused; the first still gets its message, and an abort still ends it', async () => {
    const { push, pull, close } = await pair();
    const ac = new AbortController();
    const it = until(pull, ac.signal)[Symbol.asyncIterator]();
    const first = it.next();
    await assert.rejects(it.next(), /while a receive is pending/);
    await push.send('one');
    assert.deepEqual((await first).value?.map(String), ['one']);
    const second = it.next();
    ac.abort();
    assert.deepEqual(await second, { done: true, value: undefined });
    close();
  });

  test('return() while a receive is pending ends that next() too', async () => {
    const { pull, close } = await pair();
    const ac = new AbortController();
    const it = until(pull, ac.signal)[Symbol.asyncIterator]();
    const pending = it.next();
    await it.return!();
    assert.deepEqual(await pending, { done: true, value: undefined });
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    close();
  });

  test('an iterator never driven adds no listener', () => {
    const ac = new AbortController();
    const pull = new zmq.Pull();
    for (let i = 0; i < 5; i++) until(pull, ac.signal)[Symbol.asyncIterator]();
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    pull.close();
  });
});
