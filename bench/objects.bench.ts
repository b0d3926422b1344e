// The objects profile (YOLOX-Nano + MobileNetV2 on every box) through the running pipeline at
// client concurrency 1–16, next to the loop a user would write by hand: the same decode + detect +
// classify with the same models, in one process or two, with the same cores, in the same run.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expandImages } from '../src/cli/files.js';
import { packageRoot } from '../src/config/load.js';
import { benchPipeline, type Scenario } from './lib.js';
import { runLoop, type LoopVariant } from './loop-reference.js';
import type { RssSummary } from './proc-stats.js';
import { best, BestOf, CPU_NOTE, cpuCeilingLine, hopSection, pipelineSeries, roundsNote, rssTable, sweepPipeline, sweepTable, type PipelineSweep, type SweepRow } from './sweep.js';

const sharedModels = path.resolve(packageRoot, '../shared/models');
const sharedImages = path.resolve(packageRoot, '../shared/images');

/**
 * The pipeline runs 1 ORT thread per model (config/objects.yaml) on 2 cores. A hand-written loop
 * could use those cores in several ways; each is measured and the best is the reference.
 */
const LOOPS: LoopVariant[] = [
  { label: 'loop, 1 process, 1+1 threads, c=1', processes: 1, concurrency: 1, sets: [] },
  { label: 'loop, 1 process, 1+1 threads, c=2', processes: 1, concurrency: 2, sets: [] },
  { label: 'loop, 1 process, 1+1 threads, c=2, detector in a worker thread', processes: 1, concurrency: 2, sets: ['detect.model.workers=1'] },
  { label: 'loop, 1 process, 2+2 threads, c=1', processes: 1, concurrency: 1, sets: ['detect.threads=2', 'classify.threads=2'] },
  { label: 'loop, 2 processes, 1+1 threads, c=1', processes: 2, concurrency: 1, sets: [] },
];

const ONE_AT_A_TIME = 'framepipe pipeline, detect.concurrency=1';
const IN_WORKER = 'framepipe pipeline, detector in a worker thread';

const scenario: Scenario = {
  name: 'objects',
  description:
    'objects profile (YOLOX-Nano detect, MobileNetV2 on every box; 1 ONNX Runtime thread each) on the 10 non-text photos of shared/images, through the pipeline at client concurrency 1–16, against hand-written loops running the same decode + detect + classify with the same models: one process with the same threads (1 or 2 images interleaved), one process with 2 threads per model, and two processes side by side. Detect works on 2 jobs at once by default (`concurrency: auto`: sharp decodes one image while the model runs on the other) with the detector on the stage\'s own thread (`detect.model.workers: auto` = 0); the "detect.concurrency=1" rows take one job at a time (the default before), the "detector in a worker thread" rows run it in one worker thread (`detect.model.workers=1`), pipeline and a loop alike, in the same rounds.',
  async run({ quick }) {
    if (!existsSync(sharedModels)) return '_skipped: ../shared/models is absent_';
    const files = expandImages([sharedImages]).filter((f) => !path.basename(f).startsWith('text_'));
    const images = files.map((f) => readFileSync(f));
    const count = (c: number) => Math.max(images.length * (quick ? 2 : 8), 4 * c);
    const sets = [`models_dir=${sharedModels}`];
    const rounds = quick ? 1 : 2;
    const keep = new BestOf<SweepRow & { rss?: RssSummary }>();
    let sweep: PipelineSweep | undefined;
    const pipeline = await benchPipeline('objects', sets);
    const oneAtATime = await benchPipeline('objects', [...sets, 'detect.concurrency=1']);
    const inWorker = await benchPipeline('objects', [...sets, 'detect.model.workers=1']);
    try {
      for (let round = 0; round < rounds; round++) {
        const others = async () => {
          keep.add((await sweepPipeline(oneAtATime, images, { system: ONE_AT_A_TIME, count })).rows);
          keep.add((await sweepPipeline(inWorker, images, { system: IN_WORKER, count })).rows);
        };
        // Alternating which goes first, so a drift in the host's load does not favour one.
        if (round % 2 === 1) await others();
        sweep = await sweepPipeline(pipeline, images, { system: 'framepipe pipeline', count });
        keep.add(sweep.rows);
        if (round % 2 === 0) await others();
        // The pipeline idles meanwhile (its processes sleep in zmq_poll), so the loops get the cores.
        for (const v of quick ? LOOPS.slice(0, 2) : LOOPS) keep.add([await runLoop('objects', sets, files, count(1), v)]);
      }
    } finally {
      await pipeline.stop();
      await oneAtATime.stop();
      await inWorker.stop();
    }
    const pipelineRows = keep.where((s) => s === 'framepipe pipeline');
    const refs = keep.where((s) => !s.startsWith('framepipe pipeline')) as (SweepRow & { rss: RssSummary })[];
    const top = best(pipelineRows);
    const loop = best(refs);
    // The reference is one process; several loop processes side by side are shown too.
    const single = best(refs.filter((r) => r.system.includes('1 process')));
    const single1 = best(keep.where((s) => s === ONE_AT_A_TIME));
    const worker = best(keep.where((s) => s === IN_WORKER));
    const markdown = [
      sweepTable(keep.all()),
      '',
      `${roundsNote(rounds)} ${CPU_NOTE}`,
      '',
      `Saturation throughput: pipeline ${top.perSecond.toFixed(1)} images/s (c=${top.concurrency}); best single-process loop ${single.perSecond.toFixed(1)} (${single.system}): **${(top.perSecond / single.perSecond).toFixed(2)}×**; best of all loops ${loop.perSecond.toFixed(1)} (${loop.system}): **${(top.perSecond / loop.perSecond).toFixed(2)}×**.`,
      '',
      `Detect working on 2 jobs at once (the default: one image decoded while the other is inferred) against 1, pipeline at saturation: ${top.perSecond.toFixed(1)} vs ${single1.perSecond.toFixed(1)} images/s, **${(top.perSecond / single1.perSecond).toFixed(2)}×**; the detector in a worker thread instead of on the stage's thread (2 jobs at once either way): ${worker.perSecond.toFixed(1)}, **${(worker.perSecond / top.perSecond).toFixed(2)}×** the default.`,
      '',
      cpuCeilingLine([{ label: 'pipeline', row: top }, { label: 'loop', row: loop }]),
      '',
      `Where a request's time goes (last round; ms; parts from the replies' \`timings_ms\`, client part = round trip − \`total\`):`,
      '',
      hopSection(sweep!, 8),
      '',
      rssTable(sweep!, refs),
    ].join('\n');
    return {
      markdown,
      chart: {
        title: 'objects (YOLOX-Nano + MobileNetV2)',
        series: [pipelineSeries('pipeline', pipelineRows), { name: `best loop (${loop.system.replace(/^loop, /, '')})`, points: [[1, loop.perSecond]] }],
      },
    };
  },
};
export default scenario;
