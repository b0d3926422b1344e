// Ingest's part in bench/chain.bench.ts, in its own process: a ROUTER for clients on CLIENTS, a
// PUSH to the first forwarder on NEXT and a PULL for what comes back on BACK; requests go out
// with their routing id in front, and come back as replies to that id. No parsing, no state.
import * as zmq from 'zeromq';

const [clients, next, back] = process.argv.slice(2);
const router = new zmq.Router({ linger: 0 });
const push = new zmq.Push({ linger: 0 });
const pull = new zmq.Pull({ linger: 0 });
await router.bind(clients!);
await pull.bind(back!);
push.connect(next!);
process.send!({ ready: true });
void (async () => {
  for await (const [id, , ...rest] of router) await push.send([id!, ...rest]);
})();
for await (const [id, ...rest] of pull) await router.send([id!, Buffer.alloc(0), ...rest]);
