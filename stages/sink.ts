// sink: takes finished jobs, assembles each client's reply (or its error reply) and sends it to
// the ingest that holds that client's connection (directly, or through the broker).
import { runPipe } from '../src/stage/run-pipe.js';
import { runStage } from '../src/stage/setup.js';
import { openSink } from '../src/stage/sink-stage.js';
import { annotateJob, SinkProcessor } from '../src/stage/sink-processor.js';

// Assembling a reply is cheap; a few at once keep an annotated (slow) reply from holding the rest.
const CONCURRENCY = 4;

await runStage('sink', async (ctx) => {
  const processor = new SinkProcessor((job, detections) => annotateJob(job, detections, ctx.config.limits.max_pixels));
  const io = await openSink(ctx, CONCURRENCY, processor.describe());
  const stats = await runPipe({
    stage: 'sink',
    ...io,
    processor,
    onFailure: (job) => processor.failure(job),
    concurrency: CONCURRENCY,
    log: ctx.log,
    signal: ctx.signal,
  });
  ctx.log.info(stats, 'sink stopped');
});
