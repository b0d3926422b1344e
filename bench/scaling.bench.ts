// Horizontal scaling in broker mode: 1, 2, 4, 8 replicas of a synthetic detect stage (noop with
// delay_ms: a sleep, so replicas don't compete for the 2 cores), then a pool with one 4× slower
// replica against a pool of two fast ones, and the plumbing cost of broker vs direct mode.
import { launchPipeline, spawnStage, stopProcesses, waitReady, type Pipeline, type StageProcess } from '../src/cli/launcher.js';
import { fetchStatus } from '../src/cli/status.js';
import { loopbackTransport } from '../src/transport/ports.js';
import { offerLoad, offerRate, table, type LoadResult, type Scenario } from './lib.js';

const image = Buffer.from('x');
const endpointOf = (sets: string[], key: string) => [...sets].reverse().find((s) => s.startsWith(`${key}=`))!.split('=')[1]!;

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

const scenario: Scenario = {
  name: 'scaling',
  description:
    'Broker mode, noop profile; detect is a synthetic stage (`detect.model.delay_ms`, concurrency 1 per replica, a sleep so replicas do not compete for CPU). Closed-loop load, window = 4 × total credit.',
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

    const fast = 10;
    const pools: [string, number[], boolean][] = [
      ['two fast (10 ms + 10 ms)', [fast, fast], true],
      ['fast + 4× slow (10 ms + 40 ms), no hedging', [fast, fast * 4], false],
      ['fast + 4× slow (10 ms + 40 ms)', [fast, fast * 4], true],
    ];
    const poolRows: (string | number)[][] = [];
    const openRows: (string | number)[][] = [];
    for (const [name, delays, hedge] of pools) {
      const ideal = delays.reduce((s, d) => s + 1000 / d, 0);
      const { pipeline, sets } = await brokerPipeline([`broker.hedge=${hedge}`], 0);
      const procs = await withDetect(sets, delays);
      const counters = async () => (await fetchStatus(endpointOf(sets, 'broker.ingest'), 3000)).stats ?? {};
      try {
        for (const window of [2, 8]) {
          const r = await measure(pipeline.endpoint, window, ideal, seconds);
          poolRows.push([name, window, ideal, r.perSecond, (r.perSecond / ideal) * 100, r.p50, r.p99]);
        }
        // The same offered load for every pool: what the slow replica does to latency.
        for (const rate of [50, 70, 90]) {
          await offerRate(pipeline.endpoint, [image], rate, Math.round(rate * 0.5));
          const before = await counters();
          const r = await offerRate(pipeline.endpoint, [image], rate, Math.round(rate * (quick ? 3 : 10)));
          const after = await counters();
          const hedged = (after.hedged ?? 0) - (before.hedged ?? 0);
          openRows.push([name, rate, r.count, r.perSecond, r.p50, r.p99, hedged, r.errors]);
        }
      } finally {
        await stopProcesses(procs);
        await pipeline.stop();
      }
    }
    out.push(`\n### A slow replica in the pool\n`);
    out.push(table(['pool', 'window', 'sum of rates /s', 'img/s', '% of sum', 'p50 ms', 'p99 ms'], poolRows));
    out.push(`\n### The same offered load (open loop, requests at a fixed rate)\n`);
    const fastP99 = new Map(openRows.filter((r) => r[0] === pools[0]![0]).map((r) => [r[1], r[5] as number]));
    out.push(
      table(
        ['pool', 'offered /s', 'requests', 'img/s', 'p50 ms', 'p99 ms', 'p99 ÷ two fast', 'hedged copies', 'errors'],
        openRows.map((r) => [...r.slice(0, 6), (r[5] as number) / fastP99.get(r[1])!, ...r.slice(6)]),
      ),
    );

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
