// npm run flamegraph [-- --profile ocr --seconds 30 --warmup 10 --concurrency 8 --out-dir docs/flamegraphs]
//
// Profiles every stage of one pipeline under saturation: launches it with each stage under
// `node --cpu-prof` (through the launcher's FRAMEPIPE_NODE_ARGS), drives it with the TS Client
// on real images, stops the stages with SIGTERM so V8 writes its .cpuprofile files, and draws
// one flame graph per stage into <out-dir>/<profile>-<stage>.svg. Only samples taken inside the
// measured window (after --warmup, for --seconds) go into the graphs, so start-up and model
// loading do not drown the steady state.
//
// --cpu-prof samples the main JavaScript thread only. Work that native addons hand to threads of
// their own (onnxruntime's session.run, sharp's pipelines in libuv's pool) shows on the main
// thread as "(idle)" — so the script also prints each stage's CPU time per thread (from
// /proc/PID/task) over the same window: that is where the model's share shows.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Client } from '../src/client/client.js';
import { expandImages } from '../src/cli/files.js';
import { launchPipeline } from '../src/cli/launcher.js';
import { packageRoot } from '../src/config/load.js';
import { freePorts, loopbackTransport } from '../src/transport/ports.js';
import { foldProfile, foldedText, renderFlameGraph, selfArea, type CpuProfile, type Folded } from './flamegraph-svg.js';
import { threadCpu, threadCpuDelta, type ThreadCpu } from './proc-stats.js';

const HELP = `usage: npm run flamegraph -- [options]
  --profile NAME     config profile (default ocr)
  --seconds N        measured window (default 30)
  --warmup N         seconds of load before the window opens (default 10)
  --concurrency N    requests in flight (default 8)
  --images DIR       images to send (default as npm run soak: samples/, ../shared/images, or a generated JPEG for noop)
  --models DIR       models_dir (default ../shared/models for objects/faces)
  --set KEY=VALUE    extra config override, repeatable
  --out-dir DIR      where the SVGs go (default docs/flamegraphs)
  --keep DIR         also keep the raw .cpuprofile and .folded files in DIR
  --shared-memory    the client hands images over as /dev/shm files (request header shm)`;

const { values: opts } = parseArgs({
  options: {
    profile: { type: 'string', default: 'ocr' },
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '8' },
    images: { type: 'string' },
    models: { type: 'string' },
    set: { type: 'string', multiple: true, default: [] },
    'out-dir': { type: 'string', default: path.join(packageRoot, 'docs', 'flamegraphs') },
    keep: { type: 'string' },
    'shared-memory': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (opts.help) {
  console.log(HELP);
  process.exit(0);
}
const num = (name: string, v: string | undefined, min: number) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) {
    console.error(`flamegraph: --${name} must be a number ≥ ${min}, got ${JSON.stringify(v)}\n${HELP}`);
    process.exit(2);
  }
  return n;
};
const profile = opts.profile!;
const seconds = num('seconds', opts.seconds, 1);
const warmup = num('warmup', opts.warmup, 0);
const concurrency = Math.round(num('concurrency', opts.concurrency, 1));
const shared = path.resolve(packageRoot, '../shared');

async function loadImages(): Promise<Buffer[]> {
  if (opts.images) return expandImages([opts.images]).map((f) => readFileSync(f));
  if (profile === 'ocr') return expandImages([path.join(packageRoot, 'samples')]).map((f) => readFileSync(f));
  if (profile === 'noop') return [await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 90, g: 140, b: 200 } } }).jpeg({ quality: 85 }).toBuffer()];
  return expandImages([path.join(shared, 'images')])
    .filter((f) => !path.basename(f).startsWith('text_'))
    .map((f) => readFileSync(f));
}

const images = await loadImages();
const profDir = mkdtempSync(path.join(tmpdir(), 'fp-cpuprof-'));
const sets = [...(await loopbackTransport()), 'log.level=warn', `metrics.port=${(await freePorts(1))[0]}`, ...opts.set!];
const models = opts.models ?? (profile === 'objects' || profile === 'faces' ? path.join(shared, 'models') : undefined);
if (models) sets.push(`models_dir=${models}`);
// The launcher passes FRAMEPIPE_NODE_ARGS to every stage's node; profiles land in profDir named
// CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile (thread 0 is the main thread; tsx's loader
// thread writes one too).
const env = { ...process.env, FRAMEPIPE_NODE_ARGS: `--cpu-prof --cpu-prof-dir=${profDir}` };

console.error(`flamegraph: starting the ${profile} pipeline under --cpu-prof`);
const pipeline = await launchPipeline({ flags: { profile, set: sets }, stdio: 'pipe', env });
const client = new Client(pipeline.endpoint, { window: concurrency, timeoutMs: 60_000, sharedMemory: opts['shared-memory'] });
let running = true;
let replies = 0;
let failures = 0;
let next = 0;
const worker = async () => {
  while (running) {
    const reply = await client.infer(images[next++ % images.length]!).catch(() => null);
    if (reply?.ok) replies++;
    else failures++;
  }
};
const load = Promise.all(Array.from({ length: concurrency }, worker));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

await sleep(warmup * 1000);
const pids = pipeline.procs.map((p) => p.child.pid!);
const cpuBefore = pids.map((pid) => threadCpu(pid));
const fromUs = Number(process.hrtime.bigint() / 1000n);
const repliesBefore = replies;
console.error(`flamegraph: measuring for ${seconds} s`);
await sleep(seconds * 1000);
const toUs = Number(process.hrtime.bigint() / 1000n);
const cpuAfter = pids.map((pid) => threadCpu(pid));
const measured = replies - repliesBefore;
running = false;
await load;
await client.close();
await pipeline.stop(); // SIGTERM: each stage exits through process.exit, and V8 writes its profile then

// ---- One graph per stage ----
const outDir = path.resolve(opts['out-dir']!);
mkdirSync(outDir, { recursive: true });
if (opts.keep) mkdirSync(opts.keep, { recursive: true });
const files = readdirSync(profDir);
const pct = (n: number, of: number) => `${((100 * n) / Math.max(1, of)).toFixed(1)} %`;

const report: string[] = [];
report.push(`## ${profile}\n`);
report.push(
  `\`npm run flamegraph -- --profile ${profile} --seconds ${seconds} --warmup ${warmup} --concurrency ${concurrency}${opts['shared-memory'] ? ' --shared-memory' : ''}\` — ${measured} replies in the ${seconds} s window (${(measured / seconds).toFixed(1)}/s), ${failures} failed.\n`,
);
pipeline.procs.forEach((proc, i) => {
  const pid = proc.child.pid!;
  const file = files.find((f) => f.split('.')[3] === String(pid) && f.split('.')[4] === '0');
  if (!file) {
    report.push(`### ${proc.stage}\n\nno profile written (pid ${pid}); the stage did not exit through process.exit\n`);
    return;
  }
  const cpuprofile = JSON.parse(readFileSync(path.join(profDir, file), 'utf8')) as CpuProfile;
  const folded: Folded = foldProfile(cpuprofile, fromUs, toUs);
  const busy = folded.total - folded.idle;
  const name = `${profile}-${proc.stage}`;
  const svg = renderFlameGraph(folded.stacks, {
    title: `framepipe ${profile} profile — ${proc.stage} stage, main JS thread, ${seconds} s under load (concurrency ${concurrency})`,
    subtitle: `${busy} busy samples of ${folded.total} (${pct(busy, folded.total)} busy, the rest idle in the event loop); ${(measured / seconds).toFixed(1)} replies/s`,
  });
  writeFileSync(path.join(outDir, `${name}.svg`), svg);
  if (opts.keep) {
    writeFileSync(path.join(opts.keep, `${name}.cpuprofile`), JSON.stringify(cpuprofile));
    writeFileSync(path.join(opts.keep, `${name}.folded`), foldedText(folded));
  }

  report.push(`### ${proc.stage}\n`);
  report.push(`Main thread busy ${pct(busy, folded.total)} of ${(folded.windowMs / 1000).toFixed(1)} s (${busy} of ${folded.total} samples). [flame graph](flamegraphs/${name}.svg)\n`);
  const areas = new Map<string, number>();
  for (const [stack, n] of folded.stacks) areas.set(selfArea(stack), (areas.get(selfArea(stack)) ?? 0) + n);
  report.push('| where the main thread was busy (self time by package) | share of busy |\n|---|---|');
  for (const [a, n] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, 8)) report.push(`| ${a} | ${pct(n, busy)} |`);
  report.push('\n| top self-time frames | share of busy |\n|---|---|');
  for (const [f, n] of [...folded.self].sort((x, y) => y[1] - x[1]).slice(0, 8)) report.push(`| \`${f}\` | ${pct(n, busy)} |`);
  const before = cpuBefore[i];
  const after = cpuAfter[i];
  if (before && after) {
    const delta: ThreadCpu = threadCpuDelta(before, after);
    const total = [...delta.values()].reduce((a, b) => a + b, 0);
    report.push(`\nCPU of the whole process over the window: ${(total / seconds).toFixed(2)} cores. By thread:\n`);
    report.push('| thread | CPU s | cores |\n|---|---|---|');
    for (const [t, s] of [...delta].filter(([, s]) => s > 0).sort((x, y) => y[1] - x[1]).slice(0, 6)) report.push(`| ${t} | ${s.toFixed(2)} | ${(s / seconds).toFixed(2)} |`);
  }
  report.push('');
});
if (!opts.keep) rmSync(profDir, { recursive: true, force: true });
console.log(report.join('\n'));
console.error(`flamegraph: SVGs in ${outDir}`);
