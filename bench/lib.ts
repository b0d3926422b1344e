import { Client } from '../src/client/client.js';
import sharp from 'sharp';
import { schedule } from './dispatch-sim.js';
import { createProgress } from '../src/cli/progress.js';
import { launchPipeline, type Pipeline } from '../src/cli/launcher.js';
import { loopbackTransport } from '../src/transport/ports.js';

export interface LoadResult {
  concurrency: number;
  count: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  /** Each ok reply's client round trip and the pipeline's own `timings_ms` (offerLoad only). */
  hops?: HopSample[];
}

/** One reply: the client's round trip and the stages' account of it (docs/protocol.md, timings_ms). */
export interface HopSample {
  rtt: number;
  timings: Record<string, number>;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export function summarize(concurrency: number, latencies: number[], errors: number, seconds: number): LoadResult {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    concurrency,
    count: latencies.length,
    errors,
    seconds,
    perSecond: latencies.length / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
  };
}

/**
 * Keeps `window` messages in flight — `send` one, and another each time `receive` returns one —
 * until `n` have come back: the closed loop the stage and chain scenarios drive their peers with.
 */
export async function keepInFlight(window: number, n: number, send: () => Promise<void>, receive: () => Promise<unknown>): Promise<void> {
  let sent = 0;
  for (; sent < Math.min(window, n); sent++) await send();
  for (let back = 0; back < n; back++) {
    await receive();
    if (sent < n) {
      sent++;
      await send();
    }
  }
}

/**
 * Offers `count` images to an endpoint keeping `concurrency` in flight (a DEALER window), and
 * measures each request from send to reply (with `sharedMemory`, writing each image's file too).
 */
export async function offerLoad(
  endpoint: string,
  images: Buffer[],
  concurrency: number,
  count: number,
  options: { sharedMemory?: boolean } = {},
): Promise<LoadResult> {
  const client = new Client(endpoint, { window: concurrency, timeoutMs: 120_000, sharedMemory: options.sharedMemory ?? false });
  const latencies: number[] = [];
  const hops: HopSample[] = [];
  const progress = createProgress(count, `requests (c=${concurrency})`);
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < count) {
      const image = images[next++ % images.length]!;
      const s = performance.now();
      const reply = await client.infer(image);
      const rtt = performance.now() - s;
      latencies.push(rtt);
      if (reply.ok) hops.push({ rtt, timings: reply.timings_ms });
      else errors++;
      progress.tick();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  progress.stop();
  const seconds = (performance.now() - t0) / 1000;
  await client.close();
  return { ...summarize(concurrency, latencies, errors, seconds), hops };
}

/**
 * Open loop: sends `count` requests at a fixed `rate` per second whatever the replies do (the
 * way cameras send), so latency is measured at a given offered load rather than at a given
 * number in flight.
 */
export async function offerRate(endpoint: string, images: Buffer[], rate: number, count: number): Promise<LoadResult> {
  const r = await offerSchedule(endpoint, images, schedule('paced', rate, count), `${rate}/s offered`);
  return { ...r, concurrency: rate };
}

/**
 * Open loop on a given schedule: request i leaves at `offsetsMs[i]` after the start, whatever
 * the replies do. Latencies come back in arrival order (`latencies`) so rounds can be pooled.
 */
export async function offerSchedule(endpoint: string, images: Buffer[], offsetsMs: number[], label = 'open loop'): Promise<LoadResult & { latencies: number[] }> {
  const client = new Client(endpoint, { window: 100_000, timeoutMs: 120_000 });
  const latencies: number[] = new Array(offsetsMs.length).fill(NaN);
  let errors = 0;
  const pending: Promise<void>[] = [];
  const progress = createProgress(offsetsMs.length, `requests (${label})`);
  const t0 = performance.now();
  for (let i = 0; i < offsetsMs.length; i++) {
    const wait = t0 + offsetsMs[i]! - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const s = performance.now();
    pending.push(
      client.infer(images[i % images.length]!).then((reply) => {
        latencies[i] = performance.now() - s;
        if (!reply.ok) errors++;
        progress.tick();
      }),
    );
  }
  await Promise.all(pending);
  progress.stop();
  const seconds = (performance.now() - t0) / 1000;
  await client.close();
  // No fixed number in flight in an open loop: `concurrency` is 0.
  return { ...summarize(0, latencies, errors, seconds), latencies };
}

/** A whole pipeline on free loopback ports, for one scenario. */
export async function benchPipeline(profile: string, sets: string[] = []): Promise<Pipeline> {
  const transport = await loopbackTransport();
  return launchPipeline({ flags: { profile, set: [...transport, 'log.level=warn', ...sets] }, stdio: 'pipe' });
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const fmt = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1)) : v);
  return [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(fmt).join(' | ')} |`)].join('\n');
}

/** One panel of docs/bench/throughput.svg: images/s against client concurrency. */
export interface ChartPanel {
  title: string;
  series: ChartSeries[];
}

export interface ChartSeries {
  name: string;
  /** [concurrency, images/s]; one point makes a dashed level line (a reference that has no concurrency axis). */
  points: [number, number][];
  /** Series with the same group share a colour (e.g. one payload size's pipeline line and its echo). */
  group?: string;
}

export interface ScenarioOutput {
  /** Tables and a sentence or two for docs/benchmarks.md. */
  markdown: string;
  /** Throughput against concurrency, drawn into docs/bench/throughput.svg by `--write`. */
  chart?: ChartPanel;
}

export interface Scenario {
  name: string;
  description: string;
  /** Returns markdown (tables and a sentence or two) for docs/benchmarks.md, and optionally a chart panel. */
  run(options: { quick: boolean }): Promise<string | ScenarioOutput>;
}

/**
 * A real JPEG of random pixels, `side` × `side`: noise compresses poorly, so its size follows its
 * pixel count (about 0.65 byte per pixel at quality 80: 390 → ~100 KB). Deterministic per seed.
 */
export async function noiseJpeg(side: number, seed = 12345): Promise<Buffer> {
  const pixels = Buffer.alloc(side * side * 3);
  let x = seed;
  for (let i = 0; i < pixels.length; i++) pixels[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return sharp(pixels, { raw: { width: side, height: side, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
}
