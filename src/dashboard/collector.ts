import type { ProcessStats } from '../metrics/server.js';
import { allMetricsPorts } from '../metrics/ports.js';

type MetricJson = ProcessStats['metrics'][number];

/** One row of the dashboard's table: a process and what it did over the last window. */
export interface ProcessRow {
  stage: string;
  pid: number;
  host: string;
  url: string;
  ready: boolean;
  /** Jobs (ingest: requests) per second over the window. */
  rate: number;
  /** Processing time per job in the stage (ingest: end to end), ms, over the window (null before any job). */
  p50: number | null;
  p99: number | null;
  inflight: number;
  /** Errors since start, by code. */
  errors: Record<string, number>;
  rssMb: number;
}

export interface DashboardSnapshot {
  time: number;
  processes: ProcessRow[];
  /** Streams the sinks have answered frames of. */
  streams: string[];
  /** Whole pipeline: replies per second and end-to-end p50/p99 ms, one point per poll. */
  history: { t: number; rate: number; p50: number | null; p99: number | null }[];
}

interface Sample {
  time: number;
  stats: ProcessStats;
}

const STAGE_ORDER = ['broker', 'ingest', 'detect', 'classify', 'sink'];
/** Rates and quantiles are taken over this many seconds. */
const WINDOW_S = 5;

/**
 * Polls every process's `/stats.json` (the metrics port of each stage and the broker, found by
 * the port rule) and turns counters and histograms into rates and quantiles over a short window.
 */
export class Collector {
  private readonly samples = new Map<string, Sample[]>();
  private readonly history: DashboardSnapshot['history'] = [];
  private candidates: string[];
  private lastScan = 0;

  constructor(
    host: string,
    base: number,
    /** Extra metrics URLs to poll (a process on another host), `http://HOST:PORT`. */
    extra: string[] = [],
  ) {
    this.candidates = [...allMetricsPorts(base).map(({ port }) => `http://${host}:${port}`), ...extra];
  }

  /** One poll: known processes every time, the whole port range every few seconds. */
  async poll(): Promise<DashboardSnapshot> {
    const now = Date.now();
    const scan = now - this.lastScan > 3000;
    if (scan) this.lastScan = now;
    const urls = scan ? this.candidates : [...this.samples.keys()];
    await Promise.all(
      urls.map(async (url) => {
        try {
          const res = await fetch(`${url}/stats.json`, { signal: AbortSignal.timeout(800) });
          if (!res.ok) throw new Error(String(res.status));
          const stats = (await res.json()) as ProcessStats;
          const list = this.samples.get(url) ?? [];
          // A different pid on the same port is a restarted process: start its window afresh.
          if (list.length > 0 && list[0]!.stats.pid !== stats.pid) list.length = 0;
          list.push({ time: now, stats });
          while (list.length > 1 && now - list[0]!.time > WINDOW_S * 1000 + 500) list.shift();
          this.samples.set(url, list);
        } catch {
          this.samples.delete(url);
        }
      }),
    );
    return this.snapshot(now);
  }

  snapshot(now = Date.now()): DashboardSnapshot {
    const processes: ProcessRow[] = [];
    const streams = new Set<string>();
    let replies = 0;
    let e2e: Map<number, number> | undefined;
    for (const [url, list] of this.samples) {
      const first = list[0]!;
      const last = list[list.length - 1]!;
      const dt = Math.max(0.001, (last.time - first.time) / 1000);
      const m = last.stats.metrics;
      const m0 = first.stats.metrics;
      const stage = last.stats.stage;
      const countName = stage === 'ingest' ? 'framepipe_requests_total' : 'framepipe_jobs_total';
      const countFilter = stage === 'ingest' ? (l: Labels) => l.outcome === 'accepted' || l.outcome === 'rejected' : (l: Labels) => l.outcome !== 'malformed';
      const rate = list.length > 1 ? (sum(m, countName, countFilter) - sum(m0, countName, countFilter)) / dt : 0;
      const buckets = diffBuckets(m, m0, 'framepipe_processing_seconds', list.length > 1);
      const errors: Record<string, number> = {};
      for (const v of values(m, 'framepipe_errors_total')) if (v.value > 0) errors[String(v.labels.code)] = (errors[String(v.labels.code)] ?? 0) + v.value;
      for (const v of values(m, 'framepipe_replies_total')) {
        if (v.labels.code !== 'OK' && v.value > 0) errors[String(v.labels.code)] = (errors[String(v.labels.code)] ?? 0) + v.value;
      }
      for (const v of values(m, 'framepipe_stream_frames_total')) streams.add(String(v.labels.stream));
      if (stage === 'sink' && list.length > 1) {
        replies += (sum(m, 'framepipe_replies_total') - sum(m0, 'framepipe_replies_total')) / dt;
        const b = diffBuckets(m, m0, 'framepipe_request_seconds', true);
        if (b) {
          e2e ??= new Map();
          for (const [le, n] of b) e2e.set(le, (e2e.get(le) ?? 0) + n);
        }
      }
      const inflight = sum(m, stage === 'ingest' ? 'framepipe_requests_in_flight' : 'framepipe_jobs_in_flight');
      processes.push({
        stage,
        pid: last.stats.pid,
        host: last.stats.host,
        url,
        ready: last.stats.ready,
        rate: round(rate, 1),
        p50: quantileMs(buckets, 0.5),
        p99: quantileMs(buckets, 0.99),
        inflight,
        errors,
        rssMb: round(sum(m, 'process_resident_memory_bytes') / 2 ** 20, 1),
      });
    }
    // Ingest does no processing of its own: its latency is the request's, end to end, as the sinks measure it.
    for (const p of processes) {
      if (p.stage !== 'ingest') continue;
      p.p50 = quantileMs(e2e, 0.5);
      p.p99 = quantileMs(e2e, 0.99);
    }
    processes.sort((a, b) => STAGE_ORDER.indexOf(a.stage) - STAGE_ORDER.indexOf(b.stage) || a.pid - b.pid);
    this.history.push({ t: now, rate: round(replies, 1), p50: quantileMs(e2e, 0.5), p99: quantileMs(e2e, 0.99) });
    while (this.history.length > 120) this.history.shift();
    return { time: now, processes, streams: [...streams].filter((s) => s !== 'other').sort(), history: this.history };
  }

  /** Metrics URLs of the processes seen: sinks (live frames come from them) or all others. */
  urls(sinks: boolean): string[] {
    return [...this.samples.entries()].filter(([, list]) => (list[list.length - 1]!.stats.stage === 'sink') === sinks).map(([url]) => url);
  }
}

type Labels = Record<string, string | number>;

function values(metrics: MetricJson[], name: string): { labels: Labels; value: number; metricName?: string }[] {
  const metric = metrics.find((x) => x.name === name);
  return (metric?.values ?? []) as { labels: Labels; value: number; metricName?: string }[];
}

function sum(metrics: MetricJson[], name: string, filter: (l: Labels) => boolean = () => true): number {
  let total = 0;
  for (const v of values(metrics, name)) if (filter(v.labels)) total += v.value;
  return total;
}

/** Cumulative bucket counts (le → count) of a histogram, now minus then, summed over label sets. */
function diffBuckets(now: MetricJson[], then: MetricJson[], name: string, windowed: boolean): Map<number, number> | undefined {
  const read = (metrics: MetricJson[]) => {
    const out = new Map<number, number>();
    for (const v of values(metrics, name)) {
      if (v.metricName !== `${name}_bucket`) continue;
      const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
      out.set(le, (out.get(le) ?? 0) + v.value);
    }
    return out;
  };
  const a = read(now);
  if (!windowed) return a.size ? a : undefined;
  const b = read(then);
  for (const [le, n] of a) a.set(le, n - (b.get(le) ?? 0));
  return a.size ? a : undefined;
}

/** histogram_quantile: linear inside the bucket holding the q-th observation; ms, or null when empty. */
export function quantileMs(buckets: Map<number, number> | undefined, q: number): number | null {
  if (!buckets) return null;
  const sorted = [...buckets.entries()].sort((x, y) => x[0] - y[0]);
  const total = sorted[sorted.length - 1]?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return round(prevLe * 1000, 2);
      const inBucket = count - prevCount;
      const frac = inBucket > 0 ? (rank - prevCount) / inBucket : 1;
      return round((prevLe + (le - prevLe) * frac) * 1000, 2);
    }
    prevLe = le;
    prevCount = count;
  }
  return round(prevLe * 1000, 2);
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
