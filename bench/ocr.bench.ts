// The default OCR profile through the running pipeline at client concurrency 1–16, next to
// @gutenye/ocr-node reading the same images in one process and to our own OCR runners in a
// hand-written loop, measured in the same run.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expandImages } from '../src/cli/files.js';
import { packageRoot } from '../src/config/load.js';
import { benchPipeline, summarize, type LoadResult, type Scenario } from './lib.js';
import { runLoop, type LoopVariant } from './loop-reference.js';
import type { RssSummary } from './proc-stats.js';
import { best, BestOf, CPU_NOTE, cpuCeilingLine, hopSection, pipelineSeries, roundsNote, rssTable, sweepPipeline, sweepTable, withCpu, type PipelineSweep, type SweepRow } from './sweep.js';

async function gutenye(files: string[], count: number, concurrency: number): Promise<LoadResult> {
  const { default: Ocr } = await import('@gutenye/ocr-node');
  const ocr = await Ocr.create();
  for (const f of files) await ocr.detect(f); // warm-up, as the pipeline's
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const file = files[next++ % files.length]!;
        const s = performance.now();
        await ocr.detect(file);
        lat.push(performance.now() - s);
      }
    }),
  );
  return summarize(concurrency, lat, 0, (performance.now() - t0) / 1000);
}

const GUTENYE = '@gutenye/ocr-node, 1 process';

/**
 * Our OCR runners in one loop as config/ocr.yaml sets them up (det 1 thread; rec: two 1-thread
 * workers), then the same cores split otherwise, and rec as one 2-thread session (before the pool).
 */
const LOOPS: LoopVariant[] = [
  { label: 'our runners, 1 process, c=1', processes: 1, concurrency: 1, sets: [] },
  { label: 'our runners, 1 process, c=2', processes: 1, concurrency: 2, sets: [] },
  { label: 'our runners, 1 process, c=2, rec 1 session', processes: 1, concurrency: 2, sets: ['classify.model.workers=0'] },
  { label: 'our runners, 1 process, 2+2 threads', processes: 1, concurrency: 1, sets: ['detect.threads=2', 'classify.threads=2'] },
  { label: 'our runners, 2 processes, 1+1 threads', processes: 2, concurrency: 1, sets: ['detect.threads=1', 'classify.threads=1'] },
];

/** The pipeline as it was before recognition moved into worker threads: one 2-thread rec session, one job at a time. */
const ONE_SESSION = 'framepipe pipeline, rec 1 session';

const scenario: Scenario = {
  name: 'ocr',
  description:
    'Default profile (PP-OCRv4 det + cls + rec; detect 1 ONNX Runtime thread, classify two 1-thread recognizer workers and 2 jobs at once) on the bundled sample images (samples/), through the four-stage pipeline at client concurrency 1–16, against @gutenye/ocr-node (same models, one process, ONNX Runtime default threads) and against a hand-written loop over our own OCR runners (decode + detect + recognise in one process; the same 3 threads, or the same 2 cores split another way) on the same files. "rec 1 session" rows: the recognizer as one 2-thread session on the stage\'s own thread (`classify.model.workers=0`, as before the worker pool), in the same rounds.',
  async run({ quick }) {
    const files = expandImages([path.join(packageRoot, 'samples')]);
    const images = files.map((f) => readFileSync(f));
    const passes = quick ? 2 : 6; // over the 6 sample images per step
    const count = (c: number) => Math.max(images.length * passes, 3 * c);
    // The library reads files itself; give it the same bytes on disk.
    const dir = mkdtempSync(path.join(tmpdir(), 'fp-bench-'));
    const copies = files.map((f, i) => {
      const p = path.join(dir, `${i}-${path.basename(f)}`);
      writeFileSync(p, images[i]!);
      return p;
    });
    const rounds = quick ? 1 : 2;
    const keep = new BestOf<SweepRow & { rss?: RssSummary }>();
    let sweep: PipelineSweep | undefined;
    const pipeline = await benchPipeline('ocr');
    const oneSession = await benchPipeline('ocr', ['classify.model.workers=0']);
    try {
      for (let round = 0; round < rounds; round++) {
        sweep = await sweepPipeline(pipeline, images, { system: 'framepipe pipeline', count });
        keep.add(sweep.rows);
        keep.add((await sweepPipeline(oneSession, images, { system: ONE_SESSION, count, concurrencies: quick ? [8] : [8, 16] })).rows);
        // The pipeline idles meanwhile (its processes sleep in zmq_poll), so the references get the cores.
        for (const v of quick ? LOOPS.slice(0, 1) : LOOPS) keep.add([await runLoop('ocr', [], files, count(1), v)]);
        for (const c of quick ? [1] : [1, 2]) keep.add([await withCpu(`${GUTENYE}, c=${c}`, () => gutenye(copies, count(1), c))]);
      }
    } finally {
      await pipeline.stop();
      await oneSession.stop();
    }
    const pipelineRows = keep.where((s) => s === 'framepipe pipeline');
    const refs = keep.where((s) => s.startsWith('our runners')) as (SweepRow & { rss: RssSummary })[];
    const top = best(pipelineRows);
    const before = best(keep.where((s) => s === ONE_SESSION));
    const loop = best(refs);
    // The reference is one process; several loop processes side by side are shown too.
    const single = best(refs.filter((r) => r.system.includes('1 process')));
    const lib = best(keep.where((s) => s.startsWith(GUTENYE)));
    const markdown = [
      sweepTable(keep.all()),
      '',
      `${roundsNote(rounds)} ${CPU_NOTE}`,
      '',
      `Saturation throughput: pipeline ${top.perSecond.toFixed(2)} images/s (c=${top.concurrency}); best single-process own-runner loop ${single.perSecond.toFixed(2)} (${single.system}): **${(top.perSecond / single.perSecond).toFixed(2)}×**; best of all own-runner loops ${loop.perSecond.toFixed(2)} (${loop.system}): **${(top.perSecond / loop.perSecond).toFixed(2)}×**; best @gutenye/ocr-node ${lib.perSecond.toFixed(2)}: **${(top.perSecond / lib.perSecond).toFixed(2)}×**; the same pipeline with rec as one 2-thread session ${before.perSecond.toFixed(2)} (c=${before.concurrency}): the worker pool **${(top.perSecond / before.perSecond).toFixed(2)}×**.`,
      '',
      cpuCeilingLine([{ label: 'pipeline', row: top }, { label: 'own-runner loop', row: loop }, { label: '@gutenye/ocr-node', row: lib }]),
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
        title: 'ocr (PP-OCRv4)',
        series: [pipelineSeries('pipeline', pipelineRows), { name: 'best own-runner loop', points: [[1, loop.perSecond]] }, { name: '@gutenye/ocr-node', points: [[1, lib.perSecond]] }],
      },
    };
  },
};
export default scenario;
