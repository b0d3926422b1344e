// npm run soak [-- --minutes 10 --profile ocr --concurrency 8 --interval 5 --out samples.csv]
//
// A memory soak, not a test: launches the whole pipeline on free loopback ports, keeps it
// saturated with the TS Client on real images for --minutes, and samples every stage's resident
// set (VmRSS, /proc/PID/status) and V8 heap and external memory (the stage's own /metrics) every
// --interval seconds.
// Prints throughput, errors by code, and per stage the RSS at the start of the steady state
// (after --warmup), at the end, the end − start difference and the least-squares slope over
// the steady part.
//
// Every request is counted: ok, failed by error code, or unanswered (the client's 60 s timeout).
// The TS Client matches replies by id and drops one it no longer waits for, so a duplicate
// reply is not visible here; `npm run chaos` (bench/counted-load.ts) counts those.
//
// Exit code (so it can gate a release): 1 if any request failed or went unanswered, if a stage
// exited, or if any stage's RSS grew — slope above --max-slope MiB/min (default 1) AND end − start
// above --max-growth MiB (default 8). Both must hold: the slope alone is noisy on short runs and
// one late allocation spike moves end − start alone; a leak moves both.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Client, ClientTimeoutError } from '../src/client/client.js';
import { expandImages } from '../src/cli/files.js';
import { launchPipeline, type Pipeline } from '../src/cli/launcher.js';
import { packageRoot } from '../src/config/load.js';
import { freePorts, loopbackTransport } from '../src/transport/ports.js';
import { memoryStatus } from './proc-stats.js';

const HELP = `usage: npm run soak -- [options]
  --minutes N       length of the run (default 10)
  --profile NAME    config profile: ocr (default), objects, faces, noop …
  --concurrency N   requests in flight (default 8)
  --interval S      seconds between samples (default 5)
  --warmup S        seconds left out of the steady state (default 10 % of the run, at least 30)
  --images DIR      images to send (default: samples/ for ocr, ../shared/images for objects/faces, a generated JPEG for noop)
  --models DIR      models_dir (default ../shared/models for objects/faces)
  --max-slope M     fail if a stage's RSS slope exceeds M MiB/min … (default 1)
  --max-growth M    … and its end − start exceeds M MiB (default 8)
  --set KEY=VALUE   extra config override, repeatable (e.g. transport.mode=broker)
  --out FILE        write every sample as .csv or .json
  --shared-memory   the client hands images over as /dev/shm files (request header shm)`;

const { values: opts } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    profile: { type: 'string', default: 'ocr' },
    concurrency: { type: 'string', default: '8' },
    interval: { type: 'string', default: '5' },
    warmup: { type: 'string' },
    images: { type: 'string' },
    models: { type: 'string' },
    'max-slope': { type: 'string', default: '1' },
    'max-growth': { type: 'string', default: '8' },
    set: { type: 'string', multiple: true, default: [] },
    out: { type: 'string' },
    'shared-memory': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (opts.help) {
  console.log(HELP);
  process.exit(0);
}

function positive(name: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`soak: --${name} must be a positive number, got ${JSON.stringify(value)}\n${HELP}`);
    process.exit(2);
  }
  return n;
}

const minutes = positive('minutes', opts.minutes);
const concurrency = Math.round(positive('concurrency', opts.concurrency));
const intervalS = positive('interval', opts.interval);
const warmupS = opts.warmup !== undefined ? Number(opts.warmup) : Math.max(30, minutes * 6);
const maxSlope = positive('max-slope', opts['max-slope']);
const maxGrowth = positive('max-growth', opts['max-growth']);
const profile = opts.profile!;
if (!(warmupS >= 0 && warmupS < minutes * 60 - 2 * intervalS)) {
  console.error(`soak: --warmup ${warmupS} s leaves no steady state in a ${minutes}-minute run`);
  process.exit(2);
}

const shared = path.resolve(packageRoot, '../shared');
const MiB = 1024 * 1024;

/** The images the profile is meant for: OCR reads text, the object profiles read photos. */
async function loadImages(): Promise<Buffer[]> {
  if (opts.images) return expandImages([opts.images]).map((f) => readFileSync(f));
  if (profile === 'ocr') return expandImages([path.join(packageRoot, 'samples')]).map((f) => readFileSync(f));
  if (profile === 'noop') {
    // The noop stages never decode, but a real JPEG keeps the bytes on the wire realistic.
    return [await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 90, g: 140, b: 200 } } }).jpeg({ quality: 85 }).toBuffer()];
  }
  return expandImages([path.join(shared, 'images')])
    .filter((f) => !path.basename(f).startsWith('text_'))
    .map((f) => readFileSync(f));
}

interface Sample {
  /** Seconds since load started. */
  t: number;
  stage: string;
  pid: number;
  rssKiB: number;
  hwmKiB: number;
  /** V8 heap in use / committed, and memory outside it held by JS objects (Buffers), from the stage's /metrics; null without metrics. */
  heapBytes: number | null;
  heapTotalBytes: number | null;
  externalBytes: number | null;
}

interface V8Memory {
  heapBytes: number | null;
  heapTotalBytes: number | null;
  externalBytes: number | null;
}

/**
 * A stage's V8 memory from its own Prometheus endpoint: cheap, and no inspector needed. With RSS
 * beside it this tells where growth would be: the JS heap, Buffers (external), or native code.
 */
async function v8Memory(metricsUrl: unknown): Promise<V8Memory> {
  const none = { heapBytes: null, heapTotalBytes: null, externalBytes: null };
  if (typeof metricsUrl !== 'string') return none;
  try {
    const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    const gauge = (name: string) => {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+]+)$`, 'm').exec(text);
      return m ? Number(m[1]) : null;
    };
    return { heapBytes: gauge('nodejs_heap_size_used_bytes'), heapTotalBytes: gauge('nodejs_heap_size_total_bytes'), externalBytes: gauge('nodejs_external_memory_bytes') };
  } catch {
    return none;
  }
}

/** Unique labels for the processes: "detect", or "detect#2" for a second replica. */
function labels(pipeline: Pipeline): string[] {
  const seen = new Map<string, number>();
  return pipeline.procs.map((p) => {
    const n = (seen.get(p.stage) ?? 0) + 1;
    seen.set(p.stage, n);
    return n === 1 ? p.stage : `${p.stage}#${n}`;
  });
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return sxy / sxx;
}

const images = await loadImages();
if (images.length === 0) {
  console.error('soak: no images to send');
  process.exit(2);
}
const sets = [...(await loopbackTransport()), 'log.level=warn', ...opts.set!];
// Metrics on a free base port, so the heap can be read without colliding with another pipeline.
sets.push(`metrics.port=${(await freePorts(1))[0]}`);
const models = opts.models ?? (profile === 'objects' || profile === 'faces' ? path.join(shared, 'models') : undefined);
if (models) sets.push(`models_dir=${models}`);

console.error(`soak: starting the ${profile} pipeline`);
const pipeline = await launchPipeline({ flags: { profile, set: sets }, stdio: 'pipe' });
const names = labels(pipeline);
const client = new Client(pipeline.endpoint, { window: concurrency, timeoutMs: 60_000, sharedMemory: opts['shared-memory'] });
// Ingest's shared-memory directory: every file in it must be gone once every request is answered.
const ingestShm = pipeline.procs.find((p) => p.stage === 'ingest')?.facts.shared_memory;

let sent = 0;
let ok = 0;
const errors: Record<string, number> = {};
let replies = 0;
let crashed: string | undefined;
let interrupted = false;
// A stage that exits on its own is a failure; after Ctrl-C the stages got the SIGINT too.
void pipeline.firstExit.then((e) => {
  if (!interrupted) crashed = `${e.stage} exited (${e.signal ?? `code ${e.code}`})`;
});

const durationMs = minutes * 60_000;
const t0 = performance.now();
const elapsed = () => (performance.now() - t0) / 1000;
let stopping = false;
process.once('SIGINT', () => {
  console.error('soak: SIGINT, finishing early (the run counts as failed)');
  interrupted = stopping = true;
  // The stages stop too; whatever they no longer answer is given up on after 5 s.
  setTimeout(() => void client.close(), 5000).unref();
});

// Closed loop: `concurrency` workers, each sending the next image as soon as its reply is in.
const worker = async () => {
  while (!stopping && !crashed && performance.now() - t0 < durationMs) {
    const image = images[sent++ % images.length]!;
    try {
      const reply = await client.infer(image);
      replies++;
      if (reply.ok) ok++;
      else errors[reply.error.code] = (errors[reply.error.code] ?? 0) + 1;
    } catch (err) {
      // No reply at all: the one outcome a pipeline must never produce.
      const code = err instanceof ClientTimeoutError ? 'UNANSWERED (client timeout)' : `CLIENT ${(err as Error).message}`;
      errors[code] = (errors[code] ?? 0) + 1;
    }
  }
};

const samples: Sample[] = [];
/** Replies so far at each sampling tick: the steady-state throughput is read from these. */
const ticks: { t: number; replies: number }[] = [];
async function sample(): Promise<void> {
  const t = elapsed();
  ticks.push({ t, replies });
  const v8 = await Promise.all(pipeline.procs.map((p) => v8Memory(p.facts.metrics)));
  pipeline.procs.forEach((p, i) => {
    const mem = p.child.pid === undefined ? undefined : memoryStatus(p.child.pid);
    if (mem) samples.push({ t, stage: names[i]!, pid: p.child.pid!, rssKiB: mem.rssKiB, hwmKiB: mem.hwmKiB, ...v8[i]! });
  });
  const now = samples.filter((s) => s.t === t);
  const rss = now.map((s) => `${s.stage} ${(s.rssKiB / 1024).toFixed(0)}`).join(', ');
  const rate = (replies - lastReplies) / Math.max(1e-9, t - lastT);
  lastReplies = replies;
  lastT = t;
  console.error(`${t.toFixed(0).padStart(5)} s  ${rate.toFixed(1).padStart(7)} req/s  RSS MiB: ${rss}`);
}
let lastReplies = 0;
let lastT = 0;

let sampling = true;
const sampler = (async () => {
  await sample();
  while (sampling) {
    const next = t0 + ticks.length * intervalS * 1000;
    await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    if (sampling) await sample();
  }
})();

await Promise.all(Array.from({ length: concurrency }, worker));
sampling = false;
await sampler;
const seconds = elapsed();
await client.close();
// Every request is answered: the files of its job must be gone (the late-write sweep runs every 10 s).
const leftInShm = typeof ingestShm === 'string' && existsSync(ingestShm) ? readdirSync(ingestShm).filter((f) => f !== 'owner') : [];
const leftByClient = readdirSync('/dev/shm').filter((f) => f.startsWith(`framepipe-client-${process.pid}-`));
await pipeline.stop();

// ---- Report ----
const steadyFrom = Math.min(warmupS, seconds / 2);
const rows = names.map((stage) => {
  const all = samples.filter((s) => s.stage === stage);
  const steady = all.filter((s) => s.t >= steadyFrom);
  const first = steady[0];
  const last = steady[steady.length - 1];
  const perMin = slope(
    steady.map((s) => s.t / 60),
    steady.map((s) => s.rssKiB / 1024),
  );
  const growth = first && last ? (last.rssKiB - first.rssKiB) / 1024 : NaN;
  const heapStart = first?.heapBytes ?? null;
  const heapEnd = last?.heapBytes ?? null;
  const externalStart = first?.externalBytes ?? null;
  const externalEnd = last?.externalBytes ?? null;
  const grows = perMin > maxSlope && growth > maxGrowth;
  return { stage, first, last, perMin, growth, heapStart, heapEnd, externalStart, externalEnd, peak: Math.max(...all.map((s) => s.hwmKiB)) / 1024, grows };
});

const mib = (kib: number | undefined) => (kib === undefined ? '–' : (kib / 1024).toFixed(1));
const signed = (n: number, digits: number) => (Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${n.toFixed(digits)}` : '–');
const heap = (b: number | null) => (b === null ? '–' : (b / MiB).toFixed(1));
const steadyTick = ticks.find((k) => k.t >= steadyFrom) ?? ticks[0]!;
const steadyRate = (replies - steadyTick.replies) / Math.max(1e-9, seconds - steadyTick.t);
const unanswered = Object.entries(errors).filter(([c]) => c.startsWith('UNANSWERED') || c.startsWith('CLIENT')).reduce((a, [, n]) => a + n, 0);
const failed = Object.values(errors).reduce((a, b) => a + b, 0);

console.log(`\nsoak: profile ${profile}, ${seconds.toFixed(0)} s, concurrency ${concurrency}, ${images.length} image(s), sample every ${intervalS} s, steady state from ${steadyFrom.toFixed(0)} s`);
console.log(
  `requests ${sent}, replies ${replies}, ok ${ok}, errors ${failed}${failed ? ` {${Object.entries(errors).map(([c, n]) => `${c}: ${n}`).join(', ')}}` : ''}, unanswered ${unanswered}; ${(replies / seconds).toFixed(1)} replies/s overall, ${steadyRate.toFixed(1)}/s in the steady state\n`,
);
console.log('| stage | RSS at steady start MiB | RSS at end MiB | end − start MiB | slope MiB/min | peak RSS (VmHWM) MiB | heap used start → end MiB | external (Buffers) start → end MiB | verdict |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.stage} | ${mib(r.first?.rssKiB)} | ${mib(r.last?.rssKiB)} | ${signed(r.growth, 1)} | ${signed(r.perMin, 2)} | ${Number.isFinite(r.peak) ? r.peak.toFixed(1) : '–'} | ${heap(r.heapStart)} → ${heap(r.heapEnd)} | ${heap(r.externalStart)} → ${heap(r.externalEnd)} | ${r.grows ? '**grows**' : 'flat'} |`,
  );
}
console.log(`shared memory: ${typeof ingestShm === 'string' ? `ingest's ${ingestShm}, ${leftInShm.length} file(s) left after the last reply` : 'off'}${opts['shared-memory'] ? '; the client handed images over as /dev/shm files' : ''}`);
console.log(`\nthresholds: a stage "grows" when its slope > ${maxSlope} MiB/min and end − start > ${maxGrowth} MiB`);

if (opts.out) {
  if (opts.out.endsWith('.json')) {
    writeFileSync(opts.out, JSON.stringify({ profile, concurrency, intervalS, steadyFrom, seconds, sent, replies, ok, errors, samples }, null, 1));
  } else {
    const lines = [
      't_s,stage,pid,rss_kib,hwm_kib,heap_used_bytes,heap_total_bytes,external_bytes',
      ...samples.map((s) => `${s.t.toFixed(2)},${s.stage},${s.pid},${s.rssKiB},${s.hwmKiB},${s.heapBytes ?? ''},${s.heapTotalBytes ?? ''},${s.externalBytes ?? ''}`),
    ];
    writeFileSync(opts.out, `${lines.join('\n')}\n`);
  }
  console.error(`soak: samples written to ${opts.out}`);
}

const problems = [
  ...(interrupted ? ['interrupted (SIGINT)'] : []),
  ...(crashed ? [crashed] : []),
  ...(failed ? [`${failed} request(s) failed or went unanswered`] : []),
  ...(replies + unanswered !== sent ? [`${sent} sent but ${replies} replies and ${unanswered} unanswered`] : []),
  ...(leftInShm.length ? [`${leftInShm.length} file(s) left in ingest's ${String(ingestShm)} after every reply (${leftInShm.slice(0, 3).join(', ')})`] : []),
  ...(leftByClient.length ? [`the client's /dev/shm directory is still there: ${leftByClient.join(', ')}`] : []),
  ...rows.filter((r) => r.grows).map((r) => `${r.stage} RSS grows ${r.perMin.toFixed(2)} MiB/min (${r.growth.toFixed(1)} MiB over the steady state)`),
];
if (problems.length) console.log(`\nFAIL: ${problems.join('; ')}`);
else console.log('\nPASS: every request answered ok, no stage grows');
process.exitCode = problems.length ? 1 : 0;
