import { bindOrFail, connectHop, pullSocket, pushSocket, routerSocket } from '../transport/sockets.js';
import { SharedDir, sharedHop, sweepDeadClients } from '../transport/shared-parts.js';
import { IngestLink } from '../transport/worker-link.js';
import { serverCurve } from '../security/keys.js';
import { ZAP_DOMAIN, ZapHandler } from '../security/zap.js';
import { hopOptions } from './forward-stage.js';
import { directUpstream, IngestServer } from './ingest-server.js';
import type { StageContext } from './setup.js';

/** How often ingest looks for directories of same-host clients that died before closing (request header `shm`). */
const CLIENT_SWEEP_MS = 30_000;

/**
 * Ingest's sockets for either topology: the client ROUTER always; then, in direct mode, a PUSH
 * to detect and a PULL for the sinks' results, or in broker mode one DEALER whose routing id is
 * this ingest's origin name, by which results come home. Registers cleanup and announces ready.
 */
export async function openIngest(ctx: StageContext): Promise<IngestServer> {
  const { transport: t, limits, broker } = ctx.config;
  const hop = hopOptions(ctx);
  // CURVE on the clients endpoint: the ZAP handler is bound before the ROUTER, so no handshake
  // can complete before someone checks the client's key.
  const curve = serverCurve(ctx.config.security);
  if (curve) await ZapHandler.allow(ZAP_DOMAIN, curve.allowed, ctx.log);
  // Twice the answerable limit: larger messages still get TOO_LARGE; only absurd ones are cut off.
  const clients = routerSocket({
    ...hop,
    maxMessageSize: limits.max_message_bytes * 2 + 65536,
    ...(curve ? { curveSecretKey: curve.secretKey } : {}),
  });
  await bindOrFail(clients, t.clients, 'ingest clients');
  if (t.client_shared_memory) ctx.onClose(sweepDeadClients(CLIENT_SWEEP_MS, ctx.log));
  const security = { curve: Boolean(curve), ...(curve ? { allowed_clients: curve.allowed.length || 'any' } : {}), stages: Boolean(hop.curve) };
  if (t.mode === 'broker') {
    const link = new IngestLink(
      {
        ...hop,
        stage: 'ingest',
        endpoint: broker.ingest,
        concurrency: limits.max_inflight,
        heartbeatMs: broker.heartbeat_ms,
        liveness: broker.liveness,
        queue: limits.max_inflight,
      },
      ctx.log,
    );
    const shared = sharedDir(ctx, broker.ingest);
    const server = new IngestServer(ctx.config, { clients, upstream: link }, link.name, ctx.log, shared);
    server.keepJobs = true;
    link.onBrokerRestart = () => server.resendPending();
    ctx.onClose(async () => {
      await server.close();
      await link.close();
      clients.close();
      shared?.close();
    });
    link.start();
    ctx.ready({ clients: t.clients, security, broker: broker.ingest, origin: link.name, shared_memory: shared?.path ?? false, ...server.describe() });
    return server;
  }
  const replies = pullSocket(hop);
  const next = pushSocket(hop);
  await bindOrFail(replies, t.replies, 'ingest replies', hop.curve, ctx.log);
  connectHop(next, t.detect, hop.curve);
  const upstream = directUpstream(next, replies, limits.max_inflight);
  const shared = sharedDir(ctx, t.detect);
  const server = new IngestServer(ctx.config, { clients, upstream }, t.advertise ?? t.replies, ctx.log, shared);
  if (process.send) {
    // Started by the launcher, which restarts a stage that dies and then says so: the jobs that
    // died with it are among those still pending here, so send those again (answered once anyway).
    server.keepJobs = true;
    process.on('message', (msg: { type?: string }) => {
      if (msg?.type === 'stage-restarted') server.resendPending();
    });
  }
  ctx.onClose(async () => {
    await server.close();
    for (const socket of [clients, replies, next]) socket.close();
    shared?.close();
  });
  ctx.ready({ clients: t.clients, security, replies: t.replies, next: t.detect, shared_memory: shared?.path ?? false, ...server.describe() });
  return server;
}

/** This ingest's shared-memory directory, when its first hop (`next`) stays on this host. */
function sharedDir(ctx: StageContext, next: string): SharedDir | undefined {
  return sharedHop(ctx.config.transport, next) ? SharedDir.create(ctx.log) : undefined;
}
