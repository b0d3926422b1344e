// The floor under the no-model pipeline: five bare zeromq.js processes in framepipe's topology — a
// DEALER client (this process), an ingest-like ROUTER, three PULL → PUSH forwarders (detect,
// classify, sink) and back to the ROUTER — doing nothing of framepipe. `bare` passes a 300-byte
// message; `files` hands an image over in /dev/shm the way framepipe's fastest path does (the
// client writes it with framepipe's ClientFiles, the ROUTER makes ingest's system calls for it).
// Used by the chain scenario and, side by side with the pipeline, by the transport scenario.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { freePorts } from '../src/transport/ports.js';
import { ClientFiles, SHARED_BASE } from '../src/transport/shared-parts.js';
import { cpuSeconds } from './proc-stats.js';
import { keepInFlight } from './lib.js';

export type FloorMode = 'bare' | 'files';

export interface FloorWindow {
  window: number;
  perSecond: number;
  /** CPU µs per message: this process (the client), the ROUTER, the three forwarders. */
  cpuUs: { client: number; router: number; forwarders: number[] };
  /** Round trip of every measured message, ms. */
  latencies: number[];
}

function start(file: string, args: string[]): Promise<ChildProcess> {
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), args, { execArgv: ['--import', 'tsx'] });
  return new Promise((resolve) => child.once('message', () => resolve(child)));
}

/**
 * Starts the five processes, keeps each of `windows` messages in flight for `count` messages
 * (after a warm-up), and stops them. `imageBytes`: the image's size in `files` mode.
 */
export async function chainFloor(mode: FloorMode, windows: number[], count: number, imageBytes = 100_914): Promise<FloorWindow[]> {
  const ports = await freePorts(5);
  const ep = (i: number) => `tcp://127.0.0.1:${ports[i]}`;
  // ROUTER ep(0); forwarders bind ep(1), ep(2), ep(3); the ROUTER's PULL binds ep(4).
  const router = await start('./router-peer.ts', [ep(0), ep(1), ep(4), mode]);
  const forwarders: ChildProcess[] = [];
  for (const i of [1, 2, 3]) forwarders.push(await start('./forward-peer.ts', [ep(i), i === 3 ? ep(4) : ep(i + 1)]));
  const procs = [router, ...forwarders];
  const dealer = new zmq.Dealer({ linger: 0 });
  dealer.connect(ep(0));
  const header = Buffer.alloc(300, 7);
  const image = randomBytes(imageBytes);
  // framepipe's own client side: its private directory (swept by any ingest if this process
  // dies), a new file per image.
  const files = mode === 'files' ? new ClientFiles() : undefined;
  // Replies come back in order (one path, FIFO at every hop): each one's send time is the oldest.
  const sentAt: number[] = [];
  let latencies: number[] = [];
  const send = (): Promise<void> => {
    sentAt.push(performance.now());
    if (!files) return dealer.send([Buffer.alloc(0), header]);
    const name = files.write(image);
    if (!name) throw new Error('could not write the image to /dev/shm');
    return dealer.send([Buffer.alloc(0), `${SHARED_BASE}/${name}`]);
  };
  const receive = async (): Promise<void> => {
    await dealer.receive();
    latencies.push(performance.now() - sentAt.shift()!);
  };
  const results: FloorWindow[] = [];
  try {
    for (const window of windows) {
      await keepInFlight(window, Math.min(2000, count), send, receive);
      latencies = [];
      const cpu0 = procs.map((p) => cpuSeconds(p.pid!));
      const own0 = process.cpuUsage();
      const t0 = performance.now();
      await keepInFlight(window, count, send, receive);
      const seconds = (performance.now() - t0) / 1000;
      const us = procs.map((p, i) => ((cpuSeconds(p.pid!) - cpu0[i]!) * 1e6) / count);
      const own = process.cpuUsage(own0);
      const measured = latencies;
      latencies = [];
      results.push({
        window,
        perSecond: count / seconds,
        cpuUs: { client: (own.user + own.system) / count, router: us[0]!, forwarders: us.slice(1) },
        latencies: measured,
      });
    }
  } finally {
    dealer.close();
    await Promise.all(procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? undefined : new Promise((resolve) => (p.once('exit', resolve), p.kill())))));
    files?.close();
  }
  return results;
}
