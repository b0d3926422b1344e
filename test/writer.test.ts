// SocketWriter: which failed sends it tries again and which it reports.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as zmq from 'zeromq';
import { SocketWriter, sendPatiently, type WritableSocket } from '../src/transport/writer.js';

/** A real socket whose sends are counted (SocketWriter reads only send, closed and sendTimeout). */
function counted(socket: zmq.Dealer): { socket: WritableSocket; calls: () => number } {
  let calls = 0;
  const spy = {
    send: (frames: Buffer[]) => {
      calls++;
      return socket.send(frames);
    },
    get closed() {
      return socket.closed;
    },
    get sendTimeout() {
      return socket.sendTimeout;
    },
  };
  return { socket: spy as unknown as WritableSocket, calls: () => calls };
}

/**
 * Brings `dealer` to the point where zeromq.js's next send() is deferred by a loop turn after its
 * POLLOUT check (it sends synchronously 512 times in a row, then defers, socket.cc
 * max_sync_operations), so a disconnect right after the call drops the pipe in that window: the
 * race CI met, made deterministic.
 */
async function armDeferredSend(dealer: zmq.Dealer, router: zmq.Router): Promise<void> {
  await dealer.send('hello');
  const [id] = await router.receive();
  // A receive the poller completes resets zeromq.js's count of synchronous operations.
  const reply = dealer.receive();
  await new Promise((r) => setTimeout(r, 5));
  await router.send([id!, 'ping']);
  await reply;
  for (let i = 0; i < 512; i++) await dealer.send(`x${i}`);
}

/** Sends `frames` the way `send` does it, with the pipe dropped under it, reconnecting after 100 ms; what happened. */
async function sendWithPipeDropped(send: (dealer: zmq.Dealer) => Promise<void>): Promise<{ code?: string; delivered: boolean }> {
  const router = new zmq.Router({ linger: 0, receiveTimeout: 2000 });
  await router.bind('tcp://127.0.0.1:*');
  const endpoint = router.lastEndpoint!;
  const dealer = new zmq.Dealer({ linger: 0 });
  dealer.connect(endpoint);
  let reconnect: NodeJS.Timeout | undefined;
  try {
    await armDeferredSend(dealer, router);
    const sent = send(dealer);
    dealer.disconnect(endpoint); // terminates the pipe now, before the deferred zmq_msg_send
    reconnect = setTimeout(() => dealer.connect(endpoint), 100);
    const code = await sent.then(
      () => undefined,
      (err: { code?: string }) => err.code ?? 'no code',
    );
    let delivered = false;
    if (code === undefined) {
      for (;;) {
        const [, body] = await router.receive();
        if (body!.toString() === 'the one') break;
      }
      delivered = true;
    }
    return { ...(code ? { code } : {}), delivered };
  } finally {
    clearTimeout(reconnect);
    dealer.close();
    router.close();
  }
}

describe('SocketWriter (src/transport/writer.ts)', () => {
  test('a pipe dropped between zeromq.js\'s POLLOUT check and its send: the plain send fails with EAGAIN; SocketWriter and sendPatiently wait for the peer and deliver', async () => {
    // The control: if zeromq.js ever stops failing here, this test no longer tests the retry.
    assert.deepEqual(await sendWithPipeDropped((d) => d.send('the one')), { code: 'EAGAIN', delivered: false });
    assert.deepEqual(
      await sendWithPipeDropped(async (d) => {
        const writer = new SocketWriter(d, 10);
        try {
          await writer.send([Buffer.from('the one')]);
        } finally {
          writer.close();
        }
      }),
      { delivered: true },
    );
    assert.deepEqual(await sendWithPipeDropped((d) => sendPatiently(d, [Buffer.from('the one')])), { delivered: true });
  });

  test('a send timeout that is spent is reported, not tried again', async () => {
    const dealer = new zmq.Dealer({ linger: 0, immediate: true, sendTimeout: 500 });
    dealer.connect('tcp://127.0.0.1:1'); // nobody there and ZMQ_IMMEDIATE: no pipe, so the send waits
    const { socket, calls } = counted(dealer);
    const writer = new SocketWriter(socket, 10);
    try {
      await assert.rejects(writer.send([Buffer.from('x')]), { code: 'EAGAIN' });
      assert.equal(calls(), 1);
    } finally {
      writer.close();
      dealer.close();
    }
  });

  test('a socket closed under a waiting send is reported, not tried again', async () => {
    const dealer = new zmq.Dealer({ linger: 0, immediate: true });
    dealer.connect('tcp://127.0.0.1:1');
    const { socket, calls } = counted(dealer);
    const writer = new SocketWriter(socket, 10);
    const sent = writer.send([Buffer.from('x')]);
    await new Promise((r) => setTimeout(r, 50));
    dealer.close();
    await assert.rejects(sent, { code: 'EAGAIN' });
    assert.equal(calls(), 1);
    writer.close();
  });
});
