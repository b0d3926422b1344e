// The reference a user would write by hand: one process that loads the profile's two models and
// runs decode + detect + classify per image, with `concurrency` images interleaved. Run as N
// forked copies of this file (each its own share of the images), so "two loops on two cores" is
// measured as well as one loop; the parent times them together and reads their CPU and RSS from
// /proc like the pipeline's stages.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { createClassifyProcessor, createDetectProcessor } from '../src/models/registry.js';
import type { Job } from '../src/protocol/job.js';
import { summarize } from './lib.js';
import { cpuMeter, rssSampler, type RssSummary } from './proc-stats.js';
import type { SweepRow } from './sweep.js';

export interface LoopVariant {
  /** Forked processes, each running its own loop over its share of the images. */
  processes: number;
  /** Images in flight inside each process. */
  concurrency: number;
  /** `--set` overrides for this variant, e.g. ORT threads per model. */
  sets: string[];
  label: string;
}

interface Work {
  profile: string;
  sets: string[];
  files: string[];
  count: number;
  concurrency: number;
}

type FromChild = { type: 'ready' } | { type: 'done'; latencies: number[] };

/** Runs one variant; the row's CPU is the loop processes' together, per image. */
export async function runLoop(profile: string, sets: string[], files: string[], count: number, variant: LoopVariant): Promise<SweepRow & { rss: RssSummary }> {
  const share = Math.ceil(count / variant.processes);
  const children: ChildProcess[] = Array.from({ length: variant.processes }, () =>
    fork(fileURLToPath(import.meta.url), [], { execArgv: ['--import', import.meta.resolve('tsx')], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const next = (child: ChildProcess) =>
    new Promise<FromChild>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`loop process exited with ${code} before replying`));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.off('exit', onExit);
        resolve(m as FromChild);
      });
    });
  try {
    const ready = children.map(next);
    const work: Work = { profile, sets: [...sets, ...variant.sets], files, count: share, concurrency: variant.concurrency };
    children.forEach((c) => c.send(work));
    await Promise.all(ready); // models loaded and warmed up in every process before the clock starts
    const watched = children.map((c) => ({ stage: 'loop', pid: c.pid! }));
    const cpu = cpuMeter(watched);
    const rss = rssSampler(watched);
    const done = children.map(next);
    cpu.start();
    const t0 = performance.now();
    children.forEach((c) => c.send('go'));
    const results = await Promise.all(done);
    const seconds = (performance.now() - t0) / 1000;
    const spent = cpu.stop().loop!;
    const memory = rss.stop().loop!;
    const latencies = results.flatMap((r) => (r.type === 'done' ? r.latencies : []));
    const r = summarize(variant.processes * variant.concurrency, latencies, 0, seconds);
    return { ...r, system: variant.label, cpuPerImage: { total: spent / latencies.length }, rss: memory };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill();
  }
}

/** Child side: load, warm up, say ready, run on 'go', send the latencies, wait to be killed. */
async function child(work: Work): Promise<void> {
  const config = loadConfig({ profile: work.profile, sets: work.sets, env: {} });
  const detect = await createDetectProcessor(config);
  const classify = await createClassifyProcessor(config);
  const images = work.files.map((f) => readFileSync(f));
  const run = (image: Buffer) => {
    const now = Date.now();
    const job: Job = { meta: { job: 0, origin: '', id: null, deadline: now + 600_000, accepted: now, options: {}, timings: {}, parts: [] }, image };
    return detect.process(job).then((j) => classify.process(j));
  };
  for (const image of images) await run(image); // first runs allocate and compile, as the pipeline's warm-up pass
  await new Promise<void>((resolve) => {
    process.once('message', () => resolve());
    process.send!({ type: 'ready' } satisfies FromChild);
  });
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: work.concurrency }, async () => {
      while (next < work.count) {
        const image = images[next++ % images.length]!;
        const s = performance.now();
        await run(image);
        latencies.push(performance.now() - s);
      }
    }),
  );
  // Stay alive until the parent has read this process's CPU time and VmHWM from /proc and kills
  // it: a 'message' listener keeps the IPC channel, and so the process, referenced.
  process.on('message', () => {});
  process.send!({ type: 'done', latencies } satisfies FromChild);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  process.once('message', (work) => {
    child(work as Work).catch((err) => {
      console.error(err);
      process.exit(1);
    });
  });
}
