import type { ProcessName, StageContext } from '../stage/setup.js';
import { watchRoute } from '../dashboard/watched.js';
import { initMeters } from './meters.js';
import { MetricsServer } from './server.js';

let current: MetricsServer | undefined;

/** This process's metrics server, when metrics are on: stages add readiness checks and routes to it. */
export function metricsServer(): MetricsServer | undefined {
  return current;
}

/**
 * Turns metrics on for this process (unless `metrics.port` is 0): creates the meters, serves
 * them, and follows the stage's life — not ready until `ctx.ready`, not ready again once
 * stopping, closed with the process. The port goes into the ready facts (`metrics`).
 */
export async function startProcessMetrics(ctx: StageContext, process: ProcessName): Promise<MetricsServer | undefined> {
  const { port: base, host } = ctx.config.metrics;
  if (base === 0) return undefined;
  const server = new MetricsServer(initMeters(process), ctx.log);
  const port = await server.listen(host, base, process);
  if (port === undefined) return undefined;
  current = server;
  // The dashboard's live view tells every stage which streams are watched (their pixels then travel to the sink).
  server.addRoute(watchRoute);
  const announce = ctx.ready;
  ctx.ready = (facts) => {
    server.markReady();
    announce({ ...facts, metrics: `http://${host}:${port}/metrics` });
  };
  ctx.signal.addEventListener('abort', () => server.markStopping(), { once: true });
  ctx.onClose(() => server.close());
  return server;
}
