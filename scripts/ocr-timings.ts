/**
 * Per-image timings of the OCR runners, step by step (median of a few runs after a warm-up):
 *   node --import tsx scripts/ocr-timings.ts [--threads N] [--runs N] [image ...]
 * Without images it times samples/*. Short on purpose: the machine is shared.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { classifyModelSchema, detectModelSchema, type OcrDetConfig, type OcrRecConfig } from '../src/config/schema.js';
import { decodeImage } from '../src/image/decode.js';
import { TextDetector } from '../src/models/ocr-det.js';
import { TextRecognizer } from '../src/models/ocr-rec.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { threads: { type: 'string', default: '1' }, runs: { type: 'string', default: '5' } },
});
const threads = Number(values.threads);
const runs = Number(values.runs);
const files = positionals.length > 0
  ? positionals
  : readdirSync(path.join(root, 'samples')).filter((f) => /\.(png|jpe?g)$/.test(f)).map((f) => path.join(root, 'samples', f));

const t0 = performance.now();
const detector = await TextDetector.load(detectModelSchema.parse({ kind: 'ocr-det' }) as OcrDetConfig, { modelsDir: path.join(root, 'models'), threads });
const recognizer = await TextRecognizer.load(classifyModelSchema.parse({ kind: 'ocr-rec', batch: Number(process.env.OCR_BATCH ?? 16) }) as OcrRecConfig, { modelsDir: path.join(root, 'models'), threads });
console.log(`load (det + rec + cls sessions, OpenCV.js): ${(performance.now() - t0).toFixed(0)} ms, threads ${threads}`);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const ms = (x: number): string => x.toFixed(1).padStart(7);
console.log(`${'image'.padEnd(28)} ${'size'.padEnd(10)} lines  det:resize tensor  infer   post | rec:crop    cls  rec(batches)          decode  total`);
for (const file of files) {
  const img = await decodeImage(readFileSync(file), { maxPixels: 40_000_000 });
  const samples: number[][] = [];
  let recCalls = '';
  let lines = 0;
  for (let r = 0; r <= runs; r++) {
    const s = performance.now();
    const regions = await detector.detect(img);
    await recognizer.recognize(img, regions);
    const total = performance.now() - s;
    const d = detector.lastTimings;
    const c = recognizer.lastTimings;
    lines = regions.length;
    recCalls = c.rec.map((b) => `${b.lines}×${b.width}`).join('+');
    const recMs = c.rec.reduce((a, b) => a + b.ms, 0);
    const clsMs = c.cls.reduce((a, b) => a + b, 0);
    // The first run warms up ONNX Runtime for this image's shapes and is not counted.
    if (r > 0) samples.push([d.resize, d.tensor, d.infer, d.post, c.crop, clsMs, recMs, c.decode, total]);
  }
  const m = samples[0]!.map((_, i) => median(samples.map((s) => s[i]!)));
  console.log(
    `${path.basename(file).padEnd(28)} ${`${img.width}x${img.height}`.padEnd(10)} ${String(lines).padStart(5)} ` +
      `${ms(m[0]!)} ${ms(m[1]!)} ${ms(m[2]!)} ${ms(m[3]!)} | ${ms(m[4]!)} ${ms(m[5]!)} ${ms(m[6]!)} ${recCalls.padEnd(12)} ${ms(m[7]!)} ${ms(m[8]!)}`,
  );
}
await Promise.all([detector.close(), recognizer.close()]);
