// sink: pulls finished jobs, assembles each client's reply (or its error reply) and sends it to
// the ingest that holds that client's connection.
import { hopOptions } from '../src/stage/forward-stage.js';
import { runPipe } from '../src/stage/run-pipe.js';
import { runStage } from '../src/stage/setup.js';
import { annotateJob, SinkProcessor } from '../src/stage/sink-processor.js';
import { ReplyRouter } from '../src/transport/reply-router.js';
import { bindOrFail, pullSocket } from '../src/transport/sockets.js';

await runStage('sink', async (ctx) => {
  const { transport: t } = ctx.config;
  const hop = hopOptions(ctx);
  const processor = new SinkProcessor((job, detections) => annotateJob(job, detections, ctx.config.limits.max_pixels));
  const input = pullSocket(hop);
  const replies = new ReplyRouter(hop, ctx.log);
  ctx.onClose(async () => {
    input.close();
    await replies.close(hop.lingerMs);
  });
  await bindOrFail(input, t.sink, 'sink input');
  ctx.ready({ input: t.sink, ...processor.describe() });

  const stats = await runPipe({
    stage: 'sink',
    input,
    processor,
    emit: (out) => replies.send(out.origin, out.frames),
    onFailure: (job) => processor.failure(job),
    concurrency: 4,
    log: ctx.log,
    signal: ctx.signal,
  });
  ctx.log.info(stats, 'sink stopped');
});
