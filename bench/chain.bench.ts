// The floor under the no-model pipeline on this host: five bare zeromq.js processes in
// framepipe's topology — a DEALER client, an ingest-like ROUTER, three PULL → PUSH forwarders
// (detect, classify, sink) and back to the ROUTER — passing a 300-byte message and nothing else.
// What framepipe's own per-job work adds shows against `transport` (client shm rows) and `stage`.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { freePorts } from '../src/transport/ports.js';
import { cpuSeconds } from './proc-stats.js';
import { keepInFlight, table, type Scenario } from './lib.js';

function start(file: string, args: string[]): Promise<ChildProcess> {
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), args, { execArgv: ['--import', 'tsx'] });
  return new Promise((resolve) => child.once('message', () => resolve(child)));
}

const scenario: Scenario = {
  name: 'chain',
  description:
    "Five bare zeromq.js processes in framepipe's topology over TCP loopback — DEALER client → ROUTER (ingest's place) → PUSH/PULL forwarders for detect, classify and sink → PULL back at the ROUTER → reply — passing a 300-byte message (a job header's size) and doing nothing else; the client keeps 1, 8 or 16 in flight. CPU µs per message by process (all threads, /proc/PID/stat).",
  async run({ quick }) {
    const count = quick ? 3000 : 20_000;
    const ports = await freePorts(5);
    const ep = (i: number) => `tcp://127.0.0.1:${ports[i]}`;
    // ROUTER ep(0); forwarders bind ep(1), ep(2), ep(3); the ROUTER's PULL binds ep(4).
    const ingest = await start('./router-peer.ts', [ep(0), ep(1), ep(4)]);
    const forwarders = [];
    for (const i of [1, 2, 3]) forwarders.push(await start('./forward-peer.ts', [ep(i), i === 3 ? ep(4) : ep(i + 1)]));
    const procs = [ingest, ...forwarders];
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(ep(0));
    const header = Buffer.alloc(300, 7);
    const rows: (string | number)[][] = [];
    try {
      for (const window of [1, 8, 16]) {
        const pass = (n: number) =>
          keepInFlight(
            window,
            n,
            () => dealer.send([Buffer.alloc(0), header]),
            () => dealer.receive(),
          );
        await pass(Math.min(2000, count));
        const cpu0 = procs.map((p) => cpuSeconds(p.pid!));
        const own0 = process.cpuUsage();
        const t0 = performance.now();
        await pass(count);
        const seconds = (performance.now() - t0) / 1000;
        const us = procs.map((p, i) => ((cpuSeconds(p.pid!) - cpu0[i]!) * 1e6) / count);
        const own = process.cpuUsage(own0);
        const client = (own.user + own.system) / count;
        rows.push([window, count / seconds, client, ...us, client + us.reduce((a, b) => a + b, 0)]);
      }
    } finally {
      dealer.close();
      for (const p of procs) p.kill();
    }
    return table(['in flight', 'messages/s', 'client µs', 'ROUTER µs', 'forwarder 1 µs', 'forwarder 2 µs', 'forwarder 3 µs', 'all five µs'], rows);
  },
};
export default scenario;
