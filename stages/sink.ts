// sink: takes finished jobs, assembles each client's reply (or its error reply) and sends it to
// the ingest that holds that client's connection (directly, or through the broker).
import { LiveFrames } from '../src/dashboard/live-frames.js';
import { ObservedSink } from '../src/metrics/observed-sink.js';
import { metricsServer } from '../src/metrics/process-metrics.js';
import type { Job } from '../src/protocol/job.js';
import type { Detection } from '../src/protocol/types.js';
import { runPipe } from '../src/stage/run-pipe.js';
import { runStage } from '../src/stage/setup.js';
import { openSink } from '../src/stage/sink-stage.js';
import { annotateJob, SinkProcessor } from '../src/stage/sink-processor.js';

// Assembling a reply is cheap; a few at once keep an annotated (slow) reply from holding the rest.
const CONCURRENCY = 4;

await runStage('sink', async (ctx) => {
  const annotator = (job: Job, detections: Detection[]) => annotateJob(job, detections, ctx.config.limits.max_pixels);
  // The live view (framepipe dashboard) asks the sink's metrics port for streams' latest frames.
  const live = metricsServer() ? new LiveFrames(annotator) : undefined;
  if (live) metricsServer()!.addRoute(live.route);
  const processor = new ObservedSink(new SinkProcessor(annotator), live);
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
