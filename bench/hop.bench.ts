// What one hop costs with nothing else in the way: a bare zeromq PUSH → PULL between two
// processes, a small header frame plus a payload frame (the shape of a job), CPU time per
// message at each end (process.cpuUsage, which counts ZeroMQ's I/O thread too). Four such hops
// carry the image through the pipeline, so this bounds what the plumbing can reach on a host.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { freePorts } from '../src/transport/ports.js';
import { table, type Scenario } from './lib.js';

interface PeerReport {
  cpuUs: number;
  perSecond: number;
}

async function hop(endpoint: string, size: number, count: number): Promise<{ sendUs: number } & PeerReport> {
  const warmup = Math.floor(count / 10);
  const peer = fork(fileURLToPath(new URL('./hop-peer.ts', import.meta.url)), [endpoint, String(count), String(warmup)], {
    execArgv: ['--import', 'tsx'],
  });
  const messages: unknown[] = [];
  const next = () => new Promise<unknown>((resolve) => (messages.length ? resolve(messages.shift()) : peer.once('message', resolve)));
  await next();
  const push = new zmq.Push({ sendHighWaterMark: 1000, linger: 1000 });
  push.connect(endpoint);
  const header = Buffer.alloc(160, 1);
  // One payload per message, as a stage sends a fresh Buffer each time (zeromq.js sends > 128 B without copying).
  const payloads = Array.from({ length: 64 }, () => Buffer.alloc(size, 2));
  let cpu0 = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    if (i === warmup) cpu0 = process.cpuUsage();
    await push.send([header, payloads[i % payloads.length]!]);
  }
  const cpu = process.cpuUsage(cpu0);
  const report = (await next()) as PeerReport;
  push.close();
  peer.kill();
  return { sendUs: (cpu.user + cpu.system) / (count - warmup), ...report };
}

const scenario: Scenario = {
  name: 'hop',
  description:
    'A bare zeromq PUSH → PULL hop between two processes (160 B header + payload frame): CPU µs per message at each end, over TCP loopback and ipc://.',
  async run({ quick }) {
    const rows: (string | number)[][] = [];
    for (const size of [10_000, 100_000, 1_000_000]) {
      const count = quick ? 2000 : size >= 1_000_000 ? 5000 : 20_000;
      const [port] = await freePorts(1);
      for (const endpoint of [`tcp://127.0.0.1:${port}`, `ipc:///tmp/framepipe-hop-${process.pid}.sock`]) {
        const r = await hop(endpoint, size, count);
        rows.push([`${size / 1000} KB`, endpoint.split(':')[0]!, r.sendUs, r.cpuUs, r.sendUs + r.cpuUs, r.perSecond]);
      }
    }
    return table(['payload', 'transport', 'send CPU µs/msg', 'receive CPU µs/msg', 'hop CPU µs/msg', 'msgs/s'], rows);
  },
};
export default scenario;
