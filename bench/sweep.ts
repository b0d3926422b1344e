// A concurrency sweep of one running pipeline: images/s, p50, p99 and the CPU each stage process
// spent per image at every step, the steady RSS of each stage at the highest concurrency, and the
// per-hop split of the replies. References (single-process loops, other libraries) are rows of
// the same table, so the pipeline and what it is compared with are read side by side.
import os from 'node:os';
import type { Pipeline } from '../src/cli/launcher.js';
import { hopTable, splitHops } from './hops.js';
import { offerLoad, table, type ChartSeries, type LoadResult } from './lib.js';
import { cpuMeter, cpuSeconds, rssSampler, type RssSummary, type Watched } from './proc-stats.js';

export const CONCURRENCIES = [1, 2, 4, 8, 16];
const STAGE_COLUMNS = ['ingest', 'detect', 'classify', 'sink'];

/** One row of the sweep table: a pipeline step or a reference. */
export interface SweepRow extends LoadResult {
  system: string;
  /** CPU seconds per image by process (a stage name, `client`, or `total` for a single process). */
  cpuPerImage: Record<string, number>;
}

export interface PipelineSweep {
  rows: SweepRow[];
  /** Steady RSS per stage, sampled during the highest-concurrency step. */
  rss: Record<string, RssSummary>;
  rssConcurrency: number;
}

/**
 * Runs `count(c)` requests at each concurrency against a running pipeline, after one warm-up
 * pass over the images, reading each stage's CPU time before and after every step.
 */
export async function sweepPipeline(
  pipeline: Pipeline,
  images: Buffer[],
  options: { system: string; count: (concurrency: number) => number; concurrencies?: number[]; sharedMemory?: boolean },
): Promise<PipelineSweep> {
  const concurrencies = options.concurrencies ?? CONCURRENCIES;
  const watched: Watched[] = [...pipeline.procs.map((p) => ({ stage: p.stage, pid: p.child.pid! })), { stage: 'client', pid: process.pid }];
  const load = { sharedMemory: options.sharedMemory ?? false };
  await offerLoad(pipeline.endpoint, images, 2, Math.max(images.length, 8), load); // first runs allocate and compile
  const rows: SweepRow[] = [];
  let rss: Record<string, RssSummary> = {};
  const top = Math.max(...concurrencies);
  for (const c of concurrencies) {
    const cpu = cpuMeter(watched);
    const sampler = c === top ? rssSampler(watched.filter((w) => w.stage !== 'client')) : undefined;
    cpu.start();
    const r = await offerLoad(pipeline.endpoint, images, c, options.count(c), load);
    const spent = cpu.stop();
    if (sampler) rss = sampler.stop();
    const perImage = Object.fromEntries(Object.entries(spent).map(([k, v]) => [k, v / Math.max(1, r.count)]));
    rows.push({ ...r, system: options.system, cpuPerImage: perImage });
  }
  return { rows, rss, rssConcurrency: top };
}

/** CPU seconds of this process over `work`, per image: for references run in the bench process. */
export async function withCpu(system: string, work: () => Promise<LoadResult>): Promise<SweepRow> {
  const before = cpuSeconds(process.pid);
  const r = await work();
  return { ...r, system, cpuPerImage: { total: (cpuSeconds(process.pid) - before) / Math.max(1, r.count) } };
}

const ms = (s: number | undefined) => (s === undefined || Number.isNaN(s) ? '–' : s * 1000);

/** The main table: one row per step, CPU milliseconds per image per process on the right. */
export function sweepTable(rows: SweepRow[]): string {
  const headers = ['system', 'concurrency', 'images', 'errors', 'images/s', 'p50 ms', 'p99 ms', ...STAGE_COLUMNS.map((s) => `${s} CPU`), 'client CPU', 'total CPU'];
  return table(
    headers,
    rows.map((r) => {
      const stages = STAGE_COLUMNS.map((s) => ms(r.cpuPerImage[s]));
      return [r.system, r.concurrency, r.count, r.errors, r.perSecond, r.p50, r.p99, ...stages, ms(r.cpuPerImage.client), totalCpuMs(r)];
    }),
  );
}

export const roundsNote = (rounds: number) =>
  rounds > 1
    ? `Each row is the best of ${rounds} rounds; every round runs the pipeline sweep and then each reference, so load from elsewhere on the machine falls on both sides.`
    : 'One round (--quick).';

export const CPU_NOTE =
  'CPU columns: milliseconds of CPU time (utime + stime from /proc/PID/stat, all threads) per image, by process; "client" is the bench process that sends the load, and "total CPU" is the stages together (or the one process of a reference).';

/** Steady RSS per stage under saturation, the pipeline's sum, and the references' processes for comparison. */
export function rssTable(sweep: PipelineSweep, references: { system: string; rss: RssSummary }[] = []): string {
  const entries = Object.entries(sweep.rss);
  const rows: (string | number)[][] = entries.map(([stage, r]) => [stage, r.median, r.max, r.hwm, r.samples]);
  const sum = (k: 'median' | 'max' | 'hwm') => entries.reduce((s, [, r]) => s + r[k], 0);
  rows.push(['**all four stages**', sum('median'), sum('max'), sum('hwm'), '']);
  for (const r of references) rows.push([`${r.system} (its processes, under its own load)`, r.rss.median, r.rss.max, r.rss.hwm, r.rss.samples]);
  return `Memory under saturation (c=${sweep.rssConcurrency}): VmRSS of each stage sampled every 200 ms during that step, and VmHWM (peak over the process's life) after it.\n\n${table(['process', 'steady RSS MiB (median)', 'max RSS MiB', 'VmHWM MiB', 'samples'], rows)}`;
}

/** The hop split at concurrency 1 and at `saturated`. */
export function hopSection(sweep: PipelineSweep, saturated: number): string {
  const at = (c: number) => sweep.rows.find((r) => r.concurrency === c && r.hops?.length);
  const steps = [at(1), at(saturated)].filter((r): r is SweepRow => r !== undefined);
  return hopTable(steps.map((r) => splitHops(r.concurrency, r.hops!)));
}

export function pipelineSeries(name: string, rows: SweepRow[]): ChartSeries {
  return { name, points: rows.map((r) => [r.concurrency, r.perSecond]) };
}

/**
 * Keeps, per system and concurrency, the row with the highest throughput over several rounds.
 * The scenarios interleave the pipeline and its references round by round, so a burst of load
 * from elsewhere on a shared machine hurts one round of each rather than all of one side.
 */
export class BestOf<R extends SweepRow = SweepRow> {
  private readonly rows = new Map<string, R>();
  add(rows: R[]): void {
    for (const r of rows) {
      const key = `${r.system}\u0000${r.concurrency}`;
      const had = this.rows.get(key);
      if (!had || r.perSecond > had.perSecond) this.rows.set(key, r);
    }
  }
  /** In first-seen order. */
  all(): R[] {
    return [...this.rows.values()];
  }
  where(system: (name: string) => boolean): R[] {
    return this.all().filter((r) => system(r.system));
  }
}

/** CPU milliseconds per image of a row: the stages together (client excluded), or the reference's process. */
export function totalCpuMs(r: SweepRow): number {
  const total = r.cpuPerImage.total ?? Object.entries(r.cpuPerImage).reduce((s, [k, v]) => (k === 'client' ? s : s + v), 0);
  return total * 1000;
}

/**
 * CPU per image is what a busy shared machine disturbs least (other work delays a process but does
 * not make it use more CPU per image), so it gives a second, steadier comparison: the throughput
 * each system could reach if it had all of this host's cores to itself.
 */
export function cpuCeilingLine(rows: { label: string; row: SweepRow }[]): string {
  const cores = os.availableParallelism();
  const parts = rows.map(({ label, row }) => `${label} ${totalCpuMs(row).toFixed(1)} ms → ${((cores * 1000) / totalCpuMs(row)).toFixed(1)} images/s`);
  return `CPU per image at those rows, and the ceiling it sets on ${cores} free cores (${cores} × 1000 ÷ CPU ms): ${parts.join('; ')}.`;
}

export function best(rows: SweepRow[]): SweepRow {
  return rows.reduce((a, b) => (b.perSecond > a.perSecond ? b : a));
}
