// classify: pulls jobs from detect, reads or labels every detection (text lines, object crops),
// pushes the job on to the sink.
import { createClassifyProcessor } from '../src/models/registry.js';
import { runForwardStage } from '../src/stage/forward-stage.js';
import { runStage } from '../src/stage/setup.js';

await runStage('classify', async (ctx) => {
  const { transport: t, classify } = ctx.config;
  const processor = await createClassifyProcessor(ctx.config);
  await runForwardStage(ctx, {
    stage: 'classify',
    processor,
    from: t.classify,
    to: t.sink,
    concurrency: classify.concurrency,
    threads: classify.threads,
  });
});
