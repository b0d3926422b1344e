// The objects profile's detect stage under three settings, in interleaved rounds: a difference
// of 10–20 % needs more than the best of two sweeps on a host whose speed drifts by that much
// within minutes, so each round runs every setting once (a fresh pipeline each) and the table
// gives every round, the medians and the median of the per-round ratios.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expandImages } from '../src/cli/files.js';
import { packageRoot } from '../src/config/load.js';
import { benchPipeline, median, offerLoad, table, type Scenario } from './lib.js';

const sharedModels = path.resolve(packageRoot, '../shared/models');
const sharedImages = path.resolve(packageRoot, '../shared/images');

const SETTINGS: { label: string; sets: string[] }[] = [
  { label: 'default: detector on the stage thread, 2 jobs at once', sets: [] },
  { label: 'detect.concurrency=1 (one job at a time)', sets: ['detect.concurrency=1'] },
  { label: 'detect.model.workers=1 (detector in a worker thread, 2 jobs at once)', sets: ['detect.model.workers=1'] },
];
const CONCURRENCY = 8;

const scenario: Scenario = {
  name: 'detect-settings',
  description: `objects profile (YOLOX-Nano + MobileNetV2, 1 ONNX Runtime thread each) on the 10 non-text photos of shared/images at client concurrency ${CONCURRENCY}, with detect set three ways; each round starts a pipeline per setting in turn, warms it up and times a fixed number of images.`,
  async run({ quick }) {
    if (!existsSync(sharedModels)) return '_skipped: ../shared/models is absent_';
    const images = expandImages([sharedImages])
      .filter((f) => !path.basename(f).startsWith('text_'))
      .map((f) => readFileSync(f));
    const rounds = quick ? 2 : 6;
    const count = quick ? 40 : 160;
    const rates = SETTINGS.map(() => [] as number[]);
    for (let round = 0; round < rounds; round++) {
      for (const [i, setting] of SETTINGS.entries()) {
        const pipeline = await benchPipeline('objects', [`models_dir=${sharedModels}`, ...setting.sets]);
        try {
          await offerLoad(pipeline.endpoint, images, CONCURRENCY, 2 * images.length);
          const r = await offerLoad(pipeline.endpoint, images, CONCURRENCY, count);
          if (r.errors > 0) throw new Error(`${setting.label}: ${r.errors} errors`);
          rates[i]!.push(r.perSecond);
        } finally {
          await pipeline.stop();
        }
      }
    }
    const rows = SETTINGS.map((s, i) => {
      const ratios = rates[i]!.map((r, k) => r / rates[0]![k]!);
      return [s.label, rates[i]!.map((r) => r.toFixed(1)).join(', '), median(rates[i]!), i === 0 ? '1' : median(ratios).toFixed(2)];
    });
    return [
      table(['detect setting', `images/s per round (${count} images at c=${CONCURRENCY})`, 'median images/s', 'median of per-round ratios to the default'], rows),
      '',
      `${rounds} rounds; within a round the settings run one after another in the order above.`,
    ].join('\n');
  },
};
export default scenario;
