// The default OCR profile through the running pipeline at a few client concurrencies, next to
// @gutenye/ocr-node reading the same images in one process, measured in the same run.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expandImages } from '../src/cli/files.js';
import { packageRoot } from '../src/config/load.js';
import { benchPipeline, offerLoad, summarize, table, type Scenario, type LoadResult } from './lib.js';

async function gutenye(files: string[], rounds: number, concurrency: number): Promise<LoadResult> {
  const { default: Ocr } = await import('@gutenye/ocr-node');
  const ocr = await Ocr.create();
  await ocr.detect(files[0]!);
  const lat: number[] = [];
  let next = 0;
  const total = files.length * rounds;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const file = files[next++ % files.length]!;
        const s = performance.now();
        await ocr.detect(file);
        lat.push(performance.now() - s);
      }
    }),
  );
  return summarize(concurrency, lat, 0, (performance.now() - t0) / 1000);
}

const scenario: Scenario = {
  name: 'ocr',
  description:
    'Default profile (PP-OCRv4 det + cls + rec) on the bundled sample images (samples/), through the four-stage pipeline at client concurrency 1–8, against @gutenye/ocr-node (same models, one process, ONNX Runtime default threads) on the same files.',
  async run({ quick }) {
    const files = expandImages([path.join(packageRoot, 'samples')]);
    const images = files.map((f) => readFileSync(f));
    const rounds = quick ? 2 : 6;
    const count = images.length * rounds;
    const rows: (string | number)[][] = [];
    const pipeline = await benchPipeline('ocr');
    try {
      await offerLoad(pipeline.endpoint, images, 2, images.length); // warm-up: first runs allocate
      for (const c of [1, 2, 4, 8]) {
        const r = await offerLoad(pipeline.endpoint, images, c, count);
        rows.push(['framepipe pipeline', c, r.count, r.errors, r.perSecond, r.p50, r.p99]);
      }
    } finally {
      await pipeline.stop();
    }
    // The library reads files itself; give it the same bytes on disk.
    const dir = mkdtempSync(path.join(tmpdir(), 'fp-bench-'));
    const copies = files.map((f, i) => {
      const p = path.join(dir, `${i}-${path.basename(f)}`);
      writeFileSync(p, images[i]!);
      return p;
    });
    for (const c of [1, 2]) {
      const r = await gutenye(copies, rounds, c);
      rows.push(['@gutenye/ocr-node, 1 process', c, r.count, r.errors, r.perSecond, r.p50, r.p99]);
    }
    const best = (name: string) => Math.max(...rows.filter((r) => r[0] === name).map((r) => r[4] as number));
    const ratio = best('framepipe pipeline') / best('@gutenye/ocr-node, 1 process');
    return `${table(['system', 'concurrency', 'images', 'errors', 'images/s', 'p50 ms', 'p99 ms'], rows)}\n\nSaturation throughput, framepipe ÷ @gutenye/ocr-node: **${ratio.toFixed(2)}×**.`;
  },
};
export default scenario;
