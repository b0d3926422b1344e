// Horizontal scaling in broker mode: 1, 2, 4, 8 replicas of a synthetic detect stage (noop with
// delay_ms: a sleep, so replicas don't compete for the 2 cores), then a pool with one 4× slower
// replica against a pool of two fast ones, and the plumbing cost of broker vs direct mode.
import { launchPipeline, spawnStage, stopProcesses, waitReady, type Pipeline, type StageProcess } from '../src/cli/launcher.js';
import { fetchStatus } from '../src/cli/status.js';
import { loopbackTransport } from '../src/transport/ports.js';
import { lateShare, schedule, simulate, type Arrivals } from './dispatch-sim.js';
import { offerLoad, offerRate, offerSchedule, percentile, table, type LoadResult, type Scenario } from './lib.js';

const image = Buffer.from('x');
const endpointOf = (sets: string[], key: string) => [...sets].reverse().find((s) => s.startsWith(`${key}=`))!.split('=')[1]!;
/** The broker's status (`framepipe status`) of a pipeline's detect replicas, and its counters. */
async function detectStatus(sets: string[]) {
  const s = await fetchStatus(endpointOf(sets, 'broker.ingest'), 3000);
  return { detect: s.peers.filter((p) => p.stage === 'detect'), hedged: s.stats?.hedged ?? 0 };
}

async function brokerPipeline(extra: string[], detectReplicas: number): Promise<{ pipeline: Pipeline; sets: string[] }> {
  const sets = [...(await loopbackTransport()), 'transport.mode=broker', 'log.level=warn', ...extra];
  const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe', replicas: { detect: detectReplicas } });
  return { pipeline, sets };
}

async function withDetect(sets: string[], delays: number[]): Promise<StageProcess[]> {
  const procs = delays.map((d) => spawnStage('detect', { flags: { profile: 'noop', set: [...sets, `detect.model.delay_ms=${d}`] }, stdio: 'pipe' }));
  await Promise.all(procs.map((p) => waitReady(p, 60_000)));
  return procs;
}

/** Runs `seconds` worth of load at `window` in flight, after a short warm-up. */
async function measure(endpoint: string, window: number, expectedRate: number, seconds: number): Promise<LoadResult> {
  await offerLoad(endpoint, [image], window, Math.max(20, Math.round(expectedRate * 0.3)));
  return offerLoad(endpoint, [image], window, Math.max(50, Math.round(expectedRate * seconds)));
}

interface Pool {
  name: string;
  delays: number[];
  hedge: boolean;
  /** Also measured in the open loop (hedging makes no copies there: see docs/benchmarks.md). */
  open: boolean;
}
interface RunningPool extends Pool {
  pipeline: Pipeline;
  sets: string[];
  procs: StageProcess[];
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

/**
 * Latency at the same offered load: every pool gets the same arrival times (paced like a camera,
 * or Poisson like many independent senders), rounds interleaved across pools and pooled. Beside
 * each measured ratio stands what a perfect earliest-finish dispatcher and plain round-robin
 * would give on the same arrivals (bench/dispatch-sim.ts, with the measured service times, held
 * fixed, and the measured plumbing time),
 * because for some loads no dispatcher can keep a 4× slower replica out of the p99.
 */
async function openLoop(pools: RunningPool[], fastMs: number, quick: boolean): Promise<string> {
  const rounds = quick ? 1 : 3;
  const seconds = quick ? 3 : 10;
  // Offered loads as shares of what the fast replica alone could nominally carry.
  const one = 1000 / fastMs;
  const loads: [Arrivals, number][] = [
    ['paced', one * 0.5],
    ['paced', one * 0.7],
    ['paced', one * 0.9],
    ['poisson', one * 0.5],
    ['poisson', one * 0.9],
  ];
  type Cell = { latencies: number[]; p99s: number[]; arrivals: number[]; onSlow: number; done: number; hedged: number; errors: number };
  const cells = new Map<string, Cell>();
  const cell = (pool: Pool, load: [Arrivals, number]) => {
    const key = `${pool.name}|${load.join('|')}`;
    if (!cells.has(key)) cells.set(key, { latencies: [], p99s: [], arrivals: [], onSlow: 0, done: 0, hedged: 0, errors: 0 });
    return cells.get(key)!;
  };
  // Done per replica, keyed by pid; the slow one is the replica whose pid is the last spawned.
  const counts = async (pool: RunningPool) => {
    const { detect, hedged } = await detectStatus(pool.sets);
    const slowPid = pool.procs.at(-1)!.child.pid;
    return { slow: detect.filter((p) => p.pid === slowPid).reduce((n, p) => n + p.done, 0), all: detect.reduce((n, p) => n + p.done, 0), hedged };
  };
  for (const pool of pools) await offerRate(pool.pipeline.endpoint, [image], one * 0.5, Math.round(one * 0.5));
  // The simulation takes each replica's service time as the broker measured it (dispatch to DONE:
  // the sleep plus timer slack and transit), in spawn order.
  const served = new Map<RunningPool, number[]>();
  for (const pool of pools) {
    const { detect } = await detectStatus(pool.sets);
    served.set(pool, pool.procs.map((proc, i) => detect.find((p) => p.pid === proc.child.pid)?.serviceMs || pool.delays[i]!));
  }
  for (let round = 0; round < rounds; round++) {
    for (const load of loads) {
      const [arrivals, rate] = load;
      const offsets = schedule(arrivals, rate, Math.round(rate * seconds), 1000 * round + rate);
      for (const pool of pools) {
        const before = await counts(pool);
        const r = await offerSchedule(pool.pipeline.endpoint, [image], offsets, `${pool.name}, ${arrivals} ${rate}/s`);
        const after = await counts(pool);
        const c = cell(pool, load);
        c.latencies.push(...r.latencies);
        c.p99s.push(r.p99);
        c.arrivals.push(...offsets.map((o) => o + round * 1e9));
        c.onSlow += after.slow - before.slow;
        c.done += after.all - before.all;
        c.hedged += after.hedged - before.hedged;
        c.errors += r.errors;
      }
    }
  }
  const base = pools[0]!;
  // The floor under any dispatcher's share of jobs slower than the target (dispatch-sim.ts,
  // lateShare): only where the slow replica alone already misses the bound, so that all that
  // can meet it is the fast one.
  const floorOfLate = (pool: RunningPool, arrivals: number[], boundMs: number, plumbing: number): string | number => {
    const [quick, slowest] = [Math.min(...served.get(pool)!), Math.max(...served.get(pool)!)];
    if (quick === slowest || slowest + plumbing <= boundMs) return '—';
    return lateShare(arrivals, quick, boundMs - plumbing) * 100;
  };
  const rows: (string | number)[][] = [];
  for (const pool of pools) {
    for (const load of loads) {
      const c = cell(pool, load);
      const b = cell(base, load);
      const mine = sorted(c.latencies);
      const theirs = sorted(b.latencies);
      const ratio = percentile(mine, 99) / percentile(theirs, 99);
      const perRound = c.p99s.map((p, i) => p / b.p99s[i]!);
      // Plumbing outside the hop: what the two-fast pool's median adds to its measured service time.
      const plumbing = Math.max(0, percentile(theirs, 50) - Math.min(...served.get(base)!));
      const simP99 = (delays: number[], policy: 'earliest-finish' | 'round-robin') =>
        percentile(sorted(simulate(c.arrivals, delays, policy)), 99) + plumbing;
      const idealBase = simP99(served.get(base)!, 'earliest-finish');
      const mixed = new Set(pool.delays).size > 1;
      rows.push([
        pool.name,
        `${load[0]} ${Math.round(load[1] * 10) / 10}/s`,
        mine.length,
        percentile(mine, 50),
        percentile(mine, 99),
        ratio,
        `${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}`,
        simP99(served.get(pool)!, 'earliest-finish') / idealBase,
        simP99(served.get(pool)!, 'round-robin') / idealBase,
        mixed ? (c.onSlow / Math.max(1, c.done)) * 100 : '—',
        floorOfLate(pool, c.arrivals, percentile(theirs, 99) * 1.5, plumbing),
        c.hedged,
        c.errors,
      ]);
    }
  }
  return table(
    ['pool', 'arrivals', 'requests', 'p50 ms', 'p99 ms', 'p99 ÷ two fast', 'per round', 'earliest-finish sim ÷', 'round-robin sim ÷', '% on slow replica', 'late past 1.5× at best (%)', 'hedged copies', 'errors'],
    rows,
  );
}

const scenario: Scenario = {
  name: 'scaling',
  description:
    'Broker mode, noop profile; detect is a synthetic stage (`detect.model.delay_ms`, concurrency 1 per replica, a sleep so replicas do not compete for CPU). Replica counts and the closed-loop pool rows: window = 4 × total credit. The open-loop rows offer every pool the same arrival times, paced or Poisson, at 50, 70 and 90 % of what the fast replica alone could carry, in 3 rounds of 10 s interleaved across the pools and pooled (per round: the spread of the ratio); the two sim columns run bench/dispatch-sim.ts on the same arrivals with the service times the broker measured (fixed, so a floor: real ones vary), plus the plumbing time the two-fast pool measured, as ratios to the same simulation of the two-fast pool; "late past 1.5× at best" is the share of jobs that no dispatcher can finish within 1.5 × the two-fast p99 where only the fast replica can (fixed service times, dispatch-sim.ts lateShare).',
  async run({ quick }) {
    const delay = 50;
    const one = 1000 / delay;
    const seconds = quick ? 2 : 5;
    const out: string[] = [];

    const rows: (string | number)[][] = [];
    let base = 0;
    for (const n of [1, 2, 4, 8]) {
      const { pipeline } = await brokerPipeline([`detect.model.delay_ms=${delay}`], n);
      try {
        const r = await measure(pipeline.endpoint, 4 * n, one * n, seconds);
        if (n === 1) base = r.perSecond;
        rows.push([n, r.perSecond, r.perSecond / base, (r.perSecond / base / n) * 100, r.p50, r.p99, r.errors]);
      } finally {
        await pipeline.stop();
      }
    }
    out.push(`### Replicas of one stage (delay_ms=${delay}, one replica ideally ${one}/s)\n`);
    out.push(table(['replicas', 'img/s', 'speed-up', '% of N × one', 'p50 ms', 'p99 ms', 'errors'], rows));

    // 20 ms: the order of a small vision model here (YOLOX-Nano detect ≈ 35 ms), and long enough
    // that this shared host's timer and scheduling hiccups do not make up the whole p99.
    const fast = 20;
    const slow = fast * 4;
    const pools: Pool[] = [
      { name: `two fast (${fast} ms + ${fast} ms)`, delays: [fast, fast], hedge: true, open: true },
      { name: `fast + 4× slow (${fast} ms + ${slow} ms), no hedging`, delays: [fast, slow], hedge: false, open: false },
      { name: `fast + 4× slow (${fast} ms + ${slow} ms)`, delays: [fast, slow], hedge: true, open: true },
    ];
    // All pools run side by side, so the open-loop rounds below can interleave them: a noisy
    // minute on this shared host then lands on every pool instead of on one.
    const running: RunningPool[] = [];
    try {
      for (const pool of pools) {
        const { pipeline, sets } = await brokerPipeline([`broker.hedge=${pool.hedge}`], 0);
        running.push({ ...pool, pipeline, sets, procs: await withDetect(sets, pool.delays) });
      }
      const poolRows: (string | number)[][] = [];
      for (const pool of running) {
        const ideal = pool.delays.reduce((sum, d) => sum + 1000 / d, 0);
        for (const window of [2, 8]) {
          const r = await measure(pool.pipeline.endpoint, window, ideal, seconds);
          // What the replicas can do as the broker sees them: 1000 / (dispatch → DONE) each.
          const { detect } = await detectStatus(pool.sets);
          const measured = detect.reduce((sum, p) => sum + (p.serviceMs > 0 ? 1000 / p.serviceMs : 0), 0);
          poolRows.push([pool.name, window, ideal, measured, r.perSecond, (r.perSecond / ideal) * 100, (r.perSecond / measured) * 100, r.p50, r.p99]);
        }
      }
      out.push(`\n### A slow replica in the pool\n`);
      out.push(table(['pool', 'window', 'sum of nominal rates /s', 'sum of measured rates /s', 'img/s', '% of nominal', '% of measured', 'p50 ms', 'p99 ms'], poolRows));
      out.push(`\n### The same offered load (open loop, identical arrival times for every pool)\n`);
      out.push(await openLoop(running.filter((pool) => pool.open), fast, quick));
    } finally {
      for (const pool of running) {
        await stopProcesses(pool.procs);
        await pool.pipeline.stop();
      }
    }

    const modeRows: (string | number)[][] = [];
    for (const mode of ['direct', 'broker'] as const) {
      const sets = [...(await loopbackTransport()), `transport.mode=${mode}`, 'log.level=warn'];
      const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe' });
      try {
        await offerLoad(pipeline.endpoint, [image], 16, 300);
        const r1 = await offerLoad(pipeline.endpoint, [image], 1, quick ? 300 : 1000);
        const r16 = await offerLoad(pipeline.endpoint, [image], 16, quick ? 1000 : 4000);
        modeRows.push([mode, r1.perSecond, r1.p50, r16.perSecond, r16.p50, r16.p99]);
      } finally {
        await pipeline.stop();
      }
    }
    out.push(`\n### Plumbing cost: direct vs broker mode (noop, no delay, one replica each)\n`);
    out.push(table(['mode', 'c=1 img/s', 'c=1 p50 ms', 'c=16 img/s', 'c=16 p50 ms', 'c=16 p99 ms'], modeRows));
    return out.join('\n');
  },
};
export default scenario;
