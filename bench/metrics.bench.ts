// The cost of the metrics on the hot path: the exact hooks one job triggers in one stage's
// runPipe (received, queue wait, in-flight up and down, processing time, outcome) and in the
// sink (replies by code, per-step and end-to-end times, detections), timed in a tight loop,
// against the same loop with metrics off. The transport scenario gives the per-job cost they
// are added to (about 1 ms per request through four stages at concurrency 1).
import { initMeters, observeReply, waitSeconds } from '../src/metrics/meters.js';
import type { JobMeta } from '../src/protocol/job.js';
import { table, type Scenario } from './lib.js';

function meta(): JobMeta {
  const now = Date.now();
  return {
    job: 1,
    origin: 'tcp://127.0.0.1:1',
    id: 1,
    deadline: now + 30_000,
    accepted: now - 2,
    options: {},
    stream: 'cam1',
    detections: [],
    timings: { detect: 0.3, decode: 0.2, detect_model: 4.1, classify: 0.2, recognize: 3.3 },
    parts: [],
  };
}

function perOp(n: number, body: () => void): number {
  for (let i = 0; i < Math.min(n, 10_000); i++) body();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) body();
  return ((performance.now() - t0) * 1000) / n;
}

const scenario: Scenario = {
  name: 'metrics',
  description: 'Metrics hooks per job, µs: one stage’s runPipe hooks and the sink’s reply observation, metrics on vs off.',
  async run({ quick }) {
    const n = quick ? 100_000 : 1_000_000;
    const m = initMeters('bench');
    const job = meta();
    const off = undefined as ReturnType<typeof initMeters> | undefined;
    const stageHooks = (x: typeof m | undefined) => () => {
      x?.received.inc();
      if (x) {
        x.queueWait.observe(waitSeconds(job));
        x.inflight.inc();
      }
      x?.jobs.inc({ outcome: 'ok' });
      if (x) {
        x.inflight.dec();
        x.processing.observe(0.0004);
      }
    };
    const sinkHooks = (x: typeof m | undefined) => () => {
      if (x) observeReply(x, job, 'OK');
    };
    const rows = [
      ['one stage (runPipe hooks)', perOp(n, stageHooks(off)).toFixed(3), perOp(n, stageHooks(m)).toFixed(3)],
      ['sink reply (steps, end-to-end, stream)', perOp(n, sinkHooks(off)).toFixed(3), perOp(n, sinkHooks(m)).toFixed(3)],
    ];
    return table(['per job', 'metrics off µs', 'metrics on µs'], rows);
  },
};
export default scenario;
