// SocketWriter: which failed sends it tries again and which it reports.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as zmq from 'zeromq';
import { SocketWriter, type WritableSocket } from '../src/transport/writer.js';

/** A real socket whose sends are counted. */
function counted<S extends WritableSocket>(socket: S): { socket: WritableSocket; calls: () => number } {
  let calls = 0;
  const spy: WritableSocket = {
    send: (frames) => {
      calls++;
      return socket.send(frames);
    },
    get closed() {
      return socket.closed;
    },
    get sendTimeout() {
      return socket.sendTimeout;
    },
    set sendTimeout(ms: number) {
      socket.sendTimeout = ms;
    },
    get sendHighWaterMark() {
      return socket.sendHighWaterMark;
    },
    set sendHighWaterMark(n: number) {
      socket.sendHighWaterMark = n;
    },
  } as WritableSocket;
  return { socket: spy, calls: () => calls };
}

function eagain(): Error {
  return Object.assign(new Error('Operation was not possible or timed out'), { code: 'EAGAIN', errno: 11 });
}

describe('SocketWriter (src/transport/writer.ts)', () => {
  test('a spurious EAGAIN on a socket that waits forever is sent again, and the message arrives', async () => {
    // The race itself (libzmq's I/O thread dropping the pipe between zeromq.js's POLLOUT check and
    // its send) cannot be timed from a test, so the first send is made to fail as it does then and
    // the rest is a real PUSH/PULL pair.
    const pull = new zmq.Pull({ linger: 0 });
    await pull.bind('tcp://127.0.0.1:*');
    const push = new zmq.Push({ linger: 0 });
    push.connect(pull.lastEndpoint!);
    let tries = 0;
    const socket = {
      closed: false,
      sendTimeout: push.sendTimeout,
      send: (frames: Buffer[]) => (tries++ === 0 ? Promise.reject(eagain()) : push.send(frames)),
    } as unknown as WritableSocket;
    const writer = new SocketWriter(socket, 10);
    try {
      assert.equal(push.sendTimeout, -1, 'zeromq.js default: a send waits for a peer');
      await writer.send([Buffer.from('hello')]);
      const [frame] = await pull.receive();
      assert.equal(frame!.toString(), 'hello');
      assert.equal(tries, 2);
    } finally {
      writer.close();
      push.close();
      pull.close();
    }
  });

  test('a send timeout that is spent is reported, not tried again', async () => {
    const dealer = new zmq.Dealer({ linger: 0, immediate: true, sendTimeout: 100 });
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
    await assert.rejects(sent);
    assert.equal(calls(), 1);
    writer.close();
  });
});
