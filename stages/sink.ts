// sink: takes finished jobs, assembles each client's reply (or its error reply) and sends it to
// the ingest that holds that client's connection (directly, or through the broker).
import { hopOptions, workerLink } from '../src/stage/forward-stage.js';
import { runPipe, type PipeOptions } from '../src/stage/run-pipe.js';
import { runStage } from '../src/stage/setup.js';
import { annotateJob, SinkProcessor, type SinkOutput } from '../src/stage/sink-processor.js';
import { ReplyRouter } from '../src/transport/reply-router.js';
import { bindOrFail, pullSocket } from '../src/transport/sockets.js';

await runStage('sink', async (ctx) => {
  const { transport: t } = ctx.config;
  const hop = hopOptions(ctx);
  const processor = new SinkProcessor((job, detections) => annotateJob(job, detections, ctx.config.limits.max_pixels));
  const concurrency = 4;
  let io: Pick<PipeOptions<SinkOutput>, 'input' | 'emit' | 'dropped'>;
  if (t.mode === 'broker') {
    const link = workerLink(ctx, 'sink', concurrency);
    ctx.onClose(() => link.close());
    link.start();
    io = { input: link, emit: (out) => link.finish([Buffer.from(out.origin), ...out.frames]), dropped: () => link.release() };
    ctx.ready({ broker: ctx.config.broker.sink, replica: link.name, ...processor.describe() });
  } else {
    const input = pullSocket(hop);
    const replies = new ReplyRouter(hop, ctx.log);
    ctx.onClose(async () => {
      input.close();
      await replies.close(hop.lingerMs);
    });
    await bindOrFail(input, t.sink, 'sink input');
    io = { input, emit: (out) => replies.send(out.origin, out.frames) };
    ctx.ready({ input: t.sink, ...processor.describe() });
  }

  const stats = await runPipe({
    stage: 'sink',
    ...io,
    processor,
    onFailure: (job) => processor.failure(job),
    concurrency,
    log: ctx.log,
    signal: ctx.signal,
  });
  ctx.log.info(stats, 'sink stopped');
});
