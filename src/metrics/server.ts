import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import os from 'node:os';
import type { Logger } from '../log.js';
import type { Meters } from './meters.js';
import { metricsPort, SLOTS, type MeteredProcess } from './ports.js';

/** An extra route on the metrics port (the sink's live frames); returns false when the path is not its own. */
export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean;

/** What `/stats.json` holds: who this process is, and every metric as prom-client JSON. */
export interface ProcessStats {
  stage: string;
  pid: number;
  host: string;
  port: number;
  ready: boolean;
  uptime_s: number;
  metrics: Awaited<ReturnType<Meters['registry']['getMetricsAsJSON']>>;
}

/**
 * One small HTTP server per process: `/metrics` (Prometheus text), `/stats.json` (the same as
 * JSON, for the dashboard), `/healthz` (the process is alive) and `/readyz` (model loaded,
 * sockets up, not stopping, not overloaded).
 */
export class MetricsServer {
  private server: Server | undefined;
  private readonly routes: Route[] = [];
  private readonly checks: (() => string | undefined)[] = [];
  private isReady = false;
  private stopping = false;
  port = 0;

  constructor(
    private readonly meters: Meters,
    private readonly log: Logger,
  ) {}

  markReady(): void {
    this.isReady = true;
    this.meters.ready.set(1);
  }

  markStopping(): void {
    this.stopping = true;
    this.meters.ready.set(0);
  }

  /** A readiness condition: returns why the process is not ready, or undefined. */
  addCheck(check: () => string | undefined): void {
    this.checks.push(check);
  }

  addRoute(route: Route): void {
    this.routes.push(route);
  }

  /** Why /readyz fails, or undefined when ready. */
  notReady(): string | undefined {
    if (this.stopping) return 'stopping';
    if (!this.isReady) return 'starting (model or sockets not ready)';
    for (const check of this.checks) {
      const why = check();
      if (why) return why;
    }
    return undefined;
  }

  /**
   * Listens on the process's port by the offset rule (ports.ts), moving up a slot while the
   * port is taken (replicas on one host). Resolves with the port, or undefined when every slot
   * is taken: metrics are never a reason for a stage not to run.
   */
  async listen(host: string, base: number, process: MeteredProcess): Promise<number | undefined> {
    for (let slot = 0; slot < SLOTS; slot++) {
      const port = metricsPort(base, process, slot);
      const server = createServer((req, res) => void this.handle(req, res));
      const ok = await new Promise<boolean>((resolve) => {
        server.once('error', (err: NodeJS.ErrnoException) => {
          if (err.code !== 'EADDRINUSE') this.log.warn({ err: err.message, port }, 'metrics server failed');
          resolve(false);
        });
        server.listen(port, host, () => resolve(true));
      });
      if (ok) {
        server.unref();
        this.server = server;
        this.port = port;
        return port;
      }
    }
    this.log.warn({ base, process }, 'metrics: every port slot is taken; no metrics served');
    return undefined;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }

  async stats(): Promise<ProcessStats> {
    return {
      stage: this.meters.stage,
      pid: process.pid,
      host: os.hostname(),
      port: this.port,
      ready: this.notReady() === undefined,
      uptime_s: process.uptime(),
      metrics: await this.meters.registry.getMetricsAsJSON(),
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      switch (url.pathname) {
        case '/metrics':
          res.writeHead(200, { 'content-type': this.meters.registry.contentType });
          res.end(await this.meters.registry.metrics());
          return;
        case '/stats.json':
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(await this.stats()));
          return;
        case '/healthz':
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('ok\n');
          return;
        case '/readyz': {
          const why = this.notReady();
          res.writeHead(why ? 503 : 200, { 'content-type': 'text/plain' });
          res.end(why ? `not ready: ${why}\n` : 'ready\n');
          return;
        }
      }
      for (const route of this.routes) if (route(req, res, url)) return;
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    } catch (err) {
      if (!res.headersSent) res.writeHead(500);
      res.end(String((err as Error).message));
    }
  }
}
