// ingest: clients connect here (ROUTER, so REQ and DEALER both work). Each request becomes a
// job pushed to detect; each finished reply comes back from a sink and leaves on the same
// client connection.
import { IngestServer } from '../src/stage/ingest-server.js';
import { hopOptions } from '../src/stage/forward-stage.js';
import { runStage } from '../src/stage/setup.js';
import { bindOrFail, pullSocket, pushSocket, routerSocket } from '../src/transport/sockets.js';

await runStage('ingest', async (ctx) => {
  const { transport: t, limits } = ctx.config;
  const hop = hopOptions(ctx);
  // Twice the answerable limit: larger messages still get TOO_LARGE; only absurd ones are cut off.
  const clients = routerSocket({ ...hop, maxMessageSize: limits.max_message_bytes * 2 + 65536 });
  const replies = pullSocket(hop);
  const next = pushSocket(hop);
  await bindOrFail(clients, t.clients, 'ingest clients');
  await bindOrFail(replies, t.replies, 'ingest replies');
  next.connect(t.detect);

  const server = new IngestServer(ctx.config, { clients, replies, next }, t.advertise ?? t.replies, ctx.log);
  ctx.onClose(async () => {
    await server.close(2000);
    for (const socket of [clients, replies, next]) socket.close();
  });
  ctx.ready({ clients: t.clients, replies: t.replies, next: t.detect, ...server.describe() });
  await server.serve(ctx.signal);
  ctx.log.info(server.stats, 'ingest stopped');
});
