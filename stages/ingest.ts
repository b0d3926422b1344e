// ingest: clients connect here (ROUTER, so REQ and DEALER both work). Each request becomes a
// job for detect; each finished reply comes back (from a sink, or through the broker) and leaves
// on the same client connection.
import { directUpstream, IngestServer } from '../src/stage/ingest-server.js';
import { hopOptions } from '../src/stage/forward-stage.js';
import { runStage } from '../src/stage/setup.js';
import { bindOrFail, pullSocket, pushSocket, routerSocket } from '../src/transport/sockets.js';
import { IngestLink } from '../src/transport/worker-link.js';

await runStage('ingest', async (ctx) => {
  const { transport: t, limits, broker } = ctx.config;
  const hop = hopOptions(ctx);
  // Twice the answerable limit: larger messages still get TOO_LARGE; only absurd ones are cut off.
  const clients = routerSocket({ ...hop, maxMessageSize: limits.max_message_bytes * 2 + 65536 });
  await bindOrFail(clients, t.clients, 'ingest clients');
  let server: IngestServer;
  if (t.mode === 'broker') {
    // Broker mode: one DEALER whose routing id is this ingest's origin name; results come home by it.
    const link = new IngestLink(
      { ...hop, stage: 'ingest', endpoint: broker.ingest, concurrency: limits.max_inflight, heartbeatMs: broker.heartbeat_ms, liveness: broker.liveness, queue: limits.max_inflight },
      ctx.log,
    );
    server = new IngestServer(ctx.config, { clients, upstream: link }, link.name, ctx.log);
    ctx.onClose(async () => {
      await server.close(2000);
      await link.close();
      clients.close();
    });
    link.start();
    ctx.ready({ clients: t.clients, broker: broker.ingest, origin: link.name, ...server.describe() });
  } else {
    const replies = pullSocket(hop);
    const next = pushSocket(hop);
    await bindOrFail(replies, t.replies, 'ingest replies');
    next.connect(t.detect);
    server = new IngestServer(ctx.config, { clients, upstream: directUpstream(next, replies, limits.max_inflight) }, t.advertise ?? t.replies, ctx.log);
    ctx.onClose(async () => {
      await server.close(2000);
      for (const socket of [clients, replies, next]) socket.close();
    });
    ctx.ready({ clients: t.clients, replies: t.replies, next: t.detect, ...server.describe() });
  }
  await server.serve(ctx.signal);
  ctx.log.info(server.stats, 'ingest stopped');
});
