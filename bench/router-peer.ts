// Ingest's part in bench/chain.bench.ts, in its own process: a ROUTER for clients on CLIENTS, a
// PUSH to the first forwarder on NEXT and a PULL for what comes back on BACK; requests go out
// with their routing id in front, and come back as replies to that id. No parsing, no state.
//
// With MODE `files` it also does the file work ingest does for an image a client hands over in
// /dev/shm (request header `shm`), with the same system calls and nothing else: lstat of the
// client's directory and file, a rename into a directory of its own and an lstat there on the
// way in (the job's header then names that file), an unlink when the reply goes out.
import fs from 'node:fs';
import * as zmq from 'zeromq';

const [clients, next, back, mode] = process.argv.slice(2);
const router = new zmq.Router({ linger: 0 });
const push = new zmq.Push({ linger: 0 });
const pull = new zmq.Pull({ linger: 0 });
await router.bind(clients!);
await pull.bind(back!);
push.connect(next!);

const files = mode === 'files';
const own = files ? fs.mkdtempSync('/dev/shm/framepipe-chain-') : '';
// Whichever way this ends — stopped by the bench, Ctrl-C in the terminal (the whole process
// group gets SIGINT), or the bench process gone — the directory goes with it.
const quit = (code: number) => {
  if (own) fs.rmSync(own, { recursive: true, force: true });
  process.exit(code);
};
process.once('SIGTERM', () => quit(0));
process.once('SIGINT', () => quit(0));
process.once('disconnect', () => quit(0));
// A failed file operation is a bug in this bench: say so, and still leave nothing behind.
process.once('uncaughtException', (err) => {
  console.error(err);
  quit(1);
});
let seq = 0;

/** The client's file taken over: the header the forwarders pass on names where it went. */
function adopt(header: Buffer): Buffer {
  const from = header.toString();
  fs.lstatSync(from.slice(0, from.lastIndexOf('/')));
  fs.lstatSync(from);
  const to = `${own}/${++seq}.image.ingest`;
  fs.renameSync(from, to);
  fs.lstatSync(to);
  return Buffer.from(to.padEnd(300));
}

process.send!({ ready: true });
void (async () => {
  for await (const [id, , header, ...rest] of router) await push.send([id!, files ? adopt(header!) : header!, ...rest]);
})();
for await (const [id, header, ...rest] of pull) {
  if (files) fs.unlinkSync(header!.toString().trimEnd());
  await router.send([id!, Buffer.alloc(0), header!, ...rest]);
}
