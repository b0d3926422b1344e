// detect: pulls jobs from ingest, finds what is in each image (text regions or objects),
// pushes the job with its detections on to classify.
import { createDetectProcessor } from '../src/models/registry.js';
import { runForwardStage } from '../src/stage/forward-stage.js';
import { runStage } from '../src/stage/setup.js';

await runStage('detect', async (ctx) => {
  const { transport: t, detect } = ctx.config;
  const processor = await createDetectProcessor(ctx.config);
  await runForwardStage(ctx, {
    stage: 'detect',
    processor,
    from: t.detect,
    to: t.classify,
    concurrency: detect.concurrency,
    threads: detect.threads,
  });
});
