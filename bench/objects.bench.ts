// The objects profile (YOLOX-Nano + MobileNetV2 on every box) through the running pipeline, next
// to the loop a user would write by hand in one process: the same decode + detect + classify,
// the same models and the same threads, in the same run.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expandImages } from '../src/cli/files.js';
import { loadConfig, packageRoot } from '../src/config/load.js';
import { createClassifyProcessor, createDetectProcessor } from '../src/models/registry.js';
import type { Job } from '../src/protocol/job.js';
import { benchPipeline, offerLoad, summarize, table, type LoadResult, type Scenario } from './lib.js';

const sharedModels = path.resolve(packageRoot, '../shared/models');
const sharedImages = path.resolve(packageRoot, '../shared/images');

/** The hand-written reference: both models in this process, `concurrency` images interleaved. */
async function singleProcess(images: Buffer[], count: number, concurrency: number): Promise<LoadResult> {
  const config = loadConfig({ profile: 'objects', modelsDir: sharedModels, env: {} });
  const detect = await createDetectProcessor(config);
  const classify = await createClassifyProcessor(config);
  const run = (image: Buffer) => {
    const now = Date.now();
    const job: Job = { meta: { job: 0, origin: '', id: null, deadline: now + 60_000, accepted: now, options: {}, timings: {}, parts: [] }, image };
    return detect.process(job).then((j) => classify.process(j));
  };
  await run(images[0]!);
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const image = images[next++ % images.length]!;
        const s = performance.now();
        await run(image);
        lat.push(performance.now() - s);
      }
    }),
  );
  const result = summarize(concurrency, lat, 0, (performance.now() - t0) / 1000);
  await detect.close();
  await classify.close();
  return result;
}

const scenario: Scenario = {
  name: 'objects',
  description:
    'objects profile (YOLOX-Nano detect, MobileNetV2 on every box; 1 ONNX Runtime thread each) on the 10 non-text photos of shared/images, through the pipeline at client concurrency 1–8, against one process running the same decode + detect + classify with the same models and threads.',
  async run({ quick }) {
    if (!existsSync(sharedModels)) return '_skipped: ../shared/models is absent_';
    const files = expandImages([sharedImages]).filter((f) => !path.basename(f).startsWith('text_'));
    const images = files.map((f) => readFileSync(f));
    const count = images.length * (quick ? 2 : 8);
    const rows: (string | number)[][] = [];
    const pipeline = await benchPipeline('objects', [`models_dir=${sharedModels}`]);
    try {
      await offerLoad(pipeline.endpoint, images, 2, images.length);
      for (const c of [1, 2, 4, 8]) {
        const r = await offerLoad(pipeline.endpoint, images, c, count);
        rows.push(['framepipe pipeline', c, r.count, r.errors, r.perSecond, r.p50, r.p99]);
      }
    } finally {
      await pipeline.stop();
    }
    for (const c of [1, 2]) {
      const r = await singleProcess(images, count, c);
      rows.push(['single-process loop', c, r.count, r.errors, r.perSecond, r.p50, r.p99]);
    }
    const best = (name: string) => Math.max(...rows.filter((r) => r[0] === name).map((r) => r[4] as number));
    const ratio = best('framepipe pipeline') / best('single-process loop');
    return `${table(['system', 'concurrency', 'images', 'errors', 'images/s', 'p50 ms', 'p99 ms'], rows)}\n\nSaturation throughput, pipeline ÷ single-process loop: **${ratio.toFixed(2)}×**.`;
  },
};
export default scenario;
