// Batching across requests (detect.batch / classify.batch): the objects and OCR profiles at
// client concurrency 8 with batching off (max_size 1) and on (a few max_size / max_wait_ms), on
// the same images in the same run. The pipelines of one profile run side by side (idle stages
// cost nothing: ONNX Runtime does not spin) and take turns, round after round, so that the load
// of a shared machine falls on every setting alike.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expandImages } from '../src/cli/files.js';
import type { Pipeline } from '../src/cli/launcher.js';
import { packageRoot } from '../src/config/load.js';
import { benchPipeline, offerLoad, table, type LoadResult, type Scenario } from './lib.js';

const sharedModels = path.resolve(packageRoot, '../shared/models');
const sharedImages = path.resolve(packageRoot, '../shared/images');
const CONCURRENCY = 8;

interface Setting {
  name: string;
  sets: string[];
}

const batch = (stage: 'detect' | 'classify', size: number, waitMs: number): string[] => [`${stage}.batch.max_size=${size}`, `${stage}.batch.max_wait_ms=${waitMs}`];

const SETTINGS: Setting[] = [
  { name: 'off (max_size 1)', sets: [] },
  { name: 'classify 4 / 2 ms', sets: batch('classify', 4, 2) },
  { name: 'classify 8 / 5 ms', sets: batch('classify', 8, 5) },
  { name: 'detect + classify 4 / 2 ms', sets: [...batch('detect', 4, 2), ...batch('classify', 4, 2)] },
];

async function compare(profile: string, extra: string[], images: Buffer[], rounds: number, perRound: number): Promise<(string | number)[][]> {
  const pipelines: Pipeline[] = [];
  try {
    for (const s of SETTINGS) pipelines.push(await benchPipeline(profile, [...extra, ...s.sets]));
    // Warm-up: model sessions allocate on their first runs.
    for (const p of pipelines) await offerLoad(p.endpoint, images, 2, images.length);
    const results: LoadResult[][] = SETTINGS.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const [i, p] of pipelines.entries()) results[i]!.push(await offerLoad(p.endpoint, images, CONCURRENCY, perRound));
    }
    const merged = results.map(merge);
    const off = merged[0]!.perSecond;
    return merged.map((r, i) => [profile, SETTINGS[i]!.name, r.count, r.errors, r.perSecond, r.p50, r.p99, `${(r.perSecond / off).toFixed(2)}×`]);
  } finally {
    for (const p of pipelines) await p.stop();
  }
}

/** Rounds of one setting as one: images over summed time; the median round's percentiles. */
function merge(rounds: LoadResult[]): LoadResult {
  const count = rounds.reduce((n, r) => n + r.count, 0);
  const seconds = rounds.reduce((n, r) => n + r.count / r.perSecond, 0);
  const byRate = [...rounds].sort((a, b) => a.perSecond - b.perSecond);
  const mid = byRate[Math.floor(byRate.length / 2)]!;
  return { ...mid, count, errors: rounds.reduce((n, r) => n + r.errors, 0), perSecond: count / seconds };
}

const scenario: Scenario = {
  name: 'batching',
  description: `Batching across requests at client concurrency ${CONCURRENCY}: objects (YOLOX-Nano + MobileNetV2, 10 non-text photos of shared/images) and OCR (PP-OCRv4, samples/), each with batching off and on (\`<stage>.batch.max_size\` / \`max_wait_ms\`), the pipelines of one profile taking turns round after round on the same images. The detectors' batch axis is fixed at 1, so detect batches are looped; classify batches share inference calls.`,
  async run({ quick }) {
    const rounds = quick ? 2 : 4;
    const rows: (string | number)[][] = [];
    const samples = expandImages([path.join(packageRoot, 'samples')]).map((f) => readFileSync(f));
    if (existsSync(sharedModels)) {
      const photos = expandImages([sharedImages])
        .filter((f) => !path.basename(f).startsWith('text_'))
        .map((f) => readFileSync(f));
      rows.push(...(await compare('objects', [`models_dir=${sharedModels}`], photos, rounds, photos.length * (quick ? 2 : 4))));
    } else {
      rows.push(['objects', '_skipped: ../shared/models is absent_', 0, 0, 0, 0, 0, '']);
    }
    rows.push(...(await compare('ocr', [], samples, rounds, samples.length * (quick ? 2 : 4))));
    return table(['profile', 'batching', 'images', 'errors', 'images/s', 'p50 ms', 'p99 ms', 'gain vs off'], rows);
  },
};
export default scenario;
