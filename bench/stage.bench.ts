// What one stage costs per job beyond moving a message: the real detect stage process (noop
// profile, so no model) fed job headers exactly as ingest sends them for a 100 KB image in
// shared memory, against a bare zeromq.js forwarder process (PULL → PUSH, nothing else) on the
// same feed. The difference is the stage's own work per job — msgpack, the run loop, metrics,
// the writer — which every job pays in every stage, model or not.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { spawnStage, stopProcesses, waitReady } from '../src/cli/launcher.js';
import { encodeJob, epochMs, type Job } from '../src/protocol/job.js';
import { freePorts } from '../src/transport/ports.js';
import { PartStore } from '../src/transport/shared-parts.js';
import { cpuSeconds } from './proc-stats.js';
import { keepInFlight, median, table, type Scenario } from './lib.js';

const HEADER_ONLY = new PartStore(Number.MAX_SAFE_INTEGER, 'ingest');

/** A job header as ingest sends it to detect for a JPEG it moved into shared memory. */
function ingestHeader(seq: number): Buffer[] {
  const now = Date.now();
  const file = `${seq}.image.ingest`;
  const job: Job = {
    meta: {
      job: seq,
      origin: 'tcp://127.0.0.1:45001',
      id: seq,
      deadline: now + 30_000,
      accepted: now,
      options: {},
      timings: { ingest: 0.043 },
      handoff: epochMs(),
      parts: [],
      shm: `/dev/shm/framepipe-${process.pid}-bench`,
      written: [file],
    },
    shared: { image: { file, size: 100_914 } },
  };
  // A store that takes no new file: the header names ingest's part, as ingest's own encode does.
  return encodeJob(job, HEADER_ONLY);
}

interface Peer {
  pid: number;
  stop(): Promise<void>;
}

async function realStage(from: string, to: string): Promise<Peer> {
  const proc = spawnStage('detect', {
    flags: { profile: 'noop', set: [`transport.detect=${from}`, `transport.classify=${to}`, 'log.level=warn'] },
    stdio: 'pipe',
  });
  await waitReady(proc, 30_000);
  return { pid: proc.child.pid!, stop: () => stopProcesses([proc]) };
}

async function bareForwarder(from: string, to: string): Promise<Peer> {
  const child = fork(fileURLToPath(new URL('./forward-peer.ts', import.meta.url)), [from, to], { execArgv: ['--import', 'tsx'] });
  await new Promise((resolve) => child.once('message', resolve));
  return { pid: child.pid!, stop: () => stopProcesses([{ stage: 'detect', child, facts: {}, output: [] }]) };
}

/**
 * Keeps `window` jobs in flight through the peer (a new one for each that comes back) and
 * returns the peer's CPU µs per job and jobs/s over `count` jobs after a warm-up.
 */
async function drive(peer: Peer, push: zmq.Push, pull: zmq.Pull, window: number, count: number): Promise<{ cpuUs: number; perSecond: number }> {
  let seq = 0;
  const pass = (n: number) =>
    keepInFlight(
      window,
      n,
      () => push.send(ingestHeader(++seq)),
      () => pull.receive(),
    );
  await pass(Math.min(2000, count));
  const cpu0 = cpuSeconds(peer.pid);
  const t0 = performance.now();
  await pass(count);
  const seconds = (performance.now() - t0) / 1000;
  return { cpuUs: ((cpuSeconds(peer.pid) - cpu0) * 1e6) / count, perSecond: count / seconds };
}

const scenario: Scenario = {
  name: 'stage',
  description:
    'One stage on its own: the real detect stage process (noop profile: no model) fed job headers as ingest sends them for a 100 KB image in shared memory (≈ 300 B, no image frame), against a bare zeromq.js forwarder process (PULL → PUSH, nothing else) on the same feed over TCP loopback. The feeder keeps 1 (lock-step: every job finds the process idle) or 8 jobs in flight. CPU µs per job of the stage process, all threads (/proc/PID/stat); "stage adds" is the difference.',
  async run({ quick }) {
    const count = quick ? 3000 : 20_000;
    const rounds = quick ? 1 : 3;
    const rows: (string | number)[][] = [];
    const results = new Map<string, { cpuUs: number[]; perSecond: number[] }>();
    for (let round = 0; round < rounds; round++) {
      // Interleaved, so load from elsewhere on the host falls on both.
      for (const [name, start] of [
        ['detect stage (noop)', realStage],
        ['bare forwarder', bareForwarder],
      ] as const) {
        const [a, b] = await freePorts(2);
        const from = `tcp://127.0.0.1:${a}`;
        const to = `tcp://127.0.0.1:${b}`;
        const pull = new zmq.Pull({ linger: 0 });
        await pull.bind(to);
        const peer = await start(from, to);
        const push = new zmq.Push({ linger: 0 });
        push.connect(from);
        try {
          for (const window of [1, 8]) {
            const r = await drive(peer, push, pull, window, count);
            const key = `${name}|${window}`;
            const acc = results.get(key) ?? { cpuUs: [], perSecond: [] };
            acc.cpuUs.push(r.cpuUs);
            acc.perSecond.push(r.perSecond);
            results.set(key, acc);
          }
        } finally {
          push.close();
          pull.close();
          await peer.stop();
        }
      }
    }
    for (const window of [1, 8]) {
      const stage = results.get(`detect stage (noop)|${window}`)!;
      const bare = results.get(`bare forwarder|${window}`)!;
      const s = median(stage.cpuUs);
      const f = median(bare.cpuUs);
      rows.push([window, 'detect stage (noop)', s, median(stage.perSecond), s - f]);
      rows.push([window, 'bare forwarder', f, median(bare.perSecond), '–']);
    }
    return [
      table(['in flight', 'process', 'CPU µs per job', 'jobs/s', 'stage adds µs'], rows),
      '',
      `Median of ${rounds} interleaved rounds of ${count} jobs each (after ${Math.min(2000, count)} warm-up jobs).`,
    ].join('\n');
  },
};
export default scenario;
