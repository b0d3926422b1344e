// The floor under the no-model pipeline on this host: five bare zeromq.js processes in
// framepipe's topology — a DEALER client, an ingest-like ROUTER, three PULL → PUSH forwarders
// (detect, classify, sink) and back to the ROUTER — passing a 300-byte message and nothing else;
// and the same with a 100 KB image handed over in /dev/shm the way framepipe's fastest path does
// it (the client writes a file, the ROUTER takes it over and deletes it after the reply).
// What framepipe's own per-job work adds shows against `transport` (client shm rows) and `stage`.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { freePorts } from '../src/transport/ports.js';
import { ClientFiles, SHARED_BASE } from '../src/transport/shared-parts.js';
import { cpuSeconds } from './proc-stats.js';
import { keepInFlight, table, type Scenario } from './lib.js';

function start(file: string, args: string[]): Promise<ChildProcess> {
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), args, { execArgv: ['--import', 'tsx'] });
  return new Promise((resolve) => child.once('message', () => resolve(child)));
}

/** The same size as the transport scenario's 100 KB JPEG; the bytes do not matter to a file write. */
const IMAGE_BYTES = 100_914;
const WINDOWS = [1, 8, 16];

interface Variant {
  name: string;
  /** router-peer.ts's mode. */
  mode: 'bare' | 'files';
}
const VARIANTS: Variant[] = [
  { name: '300 B message', mode: 'bare' },
  { name: '100 KB in /dev/shm', mode: 'files' },
];

/** One pass of the chain per window: messages/s and CPU µs per message of each process. */
async function measure(variant: Variant, count: number): Promise<Map<number, number[]>> {
  const ports = await freePorts(5);
  const ep = (i: number) => `tcp://127.0.0.1:${ports[i]}`;
  // ROUTER ep(0); forwarders bind ep(1), ep(2), ep(3); the ROUTER's PULL binds ep(4).
  const ingest = await start('./router-peer.ts', [ep(0), ep(1), ep(4), variant.mode]);
  const forwarders = [];
  for (const i of [1, 2, 3]) forwarders.push(await start('./forward-peer.ts', [ep(i), i === 3 ? ep(4) : ep(i + 1)]));
  const procs = [ingest, ...forwarders];
  const dealer = new zmq.Dealer({ linger: 0 });
  dealer.connect(ep(0));
  const header = Buffer.alloc(300, 7);
  const image = randomBytes(IMAGE_BYTES);
  // framepipe's own client side: its private directory (swept by any ingest if this process
  // dies), a new file per image.
  const files = variant.mode === 'files' ? new ClientFiles() : undefined;
  const send = (): Promise<void> => {
    if (!files) return dealer.send([Buffer.alloc(0), header]);
    const name = files.write(image);
    if (!name) throw new Error('could not write the image to /dev/shm');
    return dealer.send([Buffer.alloc(0), `${SHARED_BASE}/${name}`]);
  };
  const rows = new Map<number, number[]>();
  try {
    for (const window of WINDOWS) {
      const pass = (n: number) => keepInFlight(window, n, send, () => dealer.receive());
      await pass(Math.min(2000, count));
      const cpu0 = procs.map((p) => cpuSeconds(p.pid!));
      const own0 = process.cpuUsage();
      const t0 = performance.now();
      await pass(count);
      const seconds = (performance.now() - t0) / 1000;
      const us = procs.map((p, i) => ((cpuSeconds(p.pid!) - cpu0[i]!) * 1e6) / count);
      const own = process.cpuUsage(own0);
      const client = (own.user + own.system) / count;
      rows.set(window, [count / seconds, client, ...us, client + us.reduce((a, b) => a + b, 0)]);
    }
  } finally {
    dealer.close();
    await Promise.all(procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? undefined : new Promise((resolve) => (p.once('exit', resolve), p.kill())))));
    files?.close();
  }
  return rows;
}

const scenario: Scenario = {
  name: 'chain',
  description:
    "Five bare zeromq.js processes in framepipe's topology over TCP loopback — DEALER client → ROUTER (ingest's place) → PUSH/PULL forwarders for detect, classify and sink → PULL back at the ROUTER → reply — doing nothing else; the client keeps 1, 8 or 16 in flight. \"300 B message\": a job header's size passes through. \"100 KB in /dev/shm\": framepipe's fastest path for a 100 KB image with nothing of framepipe in it — the client writes the image to a new file in its private /dev/shm directory and sends the name; the ROUTER does ingest's system calls for it (lstat of directory and file, rename into its own directory, lstat there) and sends on a 300-byte header naming it, and deletes the file when the reply passes. CPU µs per message by process (all threads, /proc/PID/stat); the client's file write is in the client column. Median of interleaved rounds.",
  async run({ quick }) {
    const count = quick ? 3000 : 10_000;
    const rounds = quick ? 1 : 3;
    const runs = new Map<string, Map<number, number[]>[]>();
    for (let round = 0; round < rounds; round++) {
      for (const variant of VARIANTS) {
        const list = runs.get(variant.name) ?? [];
        list.push(await measure(variant, count));
        runs.set(variant.name, list);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const rows: (string | number)[][] = [];
    for (const variant of VARIANTS) {
      for (const window of WINDOWS) {
        const samples = runs.get(variant.name)!.map((r) => r.get(window)!);
        rows.push([variant.name, window, ...samples[0]!.map((_, i) => median(samples.map((s) => s[i]!)))]);
      }
    }
    return [
      table(['payload', 'in flight', 'messages/s', 'client µs', 'ROUTER µs', 'forwarder 1 µs', 'forwarder 2 µs', 'forwarder 3 µs', 'all five µs'], rows),
      '',
      `Each cell the median of ${rounds} rounds (the variants interleaved) of ${count} messages per window after ${Math.min(2000, count)} warm-up messages.`,
    ].join('\n');
  },
};
export default scenario;
