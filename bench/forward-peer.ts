// The reference of bench/stage.bench.ts, in its own process: a bare zeromq.js forwarder that
// binds PULL on FROM, connects PUSH to TO and passes every message on untouched.
import * as zmq from 'zeromq';

const [from, to] = process.argv.slice(2);
const pull = new zmq.Pull({ linger: 0 });
const push = new zmq.Push({ linger: 0 });
await pull.bind(from!);
push.connect(to!);
// Gone with the bench, however it ended.
process.once('disconnect', () => process.exit(0));
process.send!({ ready: true });
for await (const msg of pull) await push.send(msg);
