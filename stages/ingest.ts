// ingest: clients connect here (ROUTER, so REQ and DEALER both work). Each request becomes a
// job for detect; each finished reply comes back (from a sink, or through the broker) and leaves
// on the same client connection.
import { observeIngest } from '../src/metrics/ingest-metrics.js';
import { openIngest } from '../src/stage/ingest-stage.js';
import { runStage } from '../src/stage/setup.js';

await runStage('ingest', async (ctx) => {
  const server = await openIngest(ctx);
  observeIngest(server, ctx.config.limits.max_inflight);
  await server.serve(ctx.signal);
  ctx.log.info(server.stats, 'ingest stopped');
});
