import { createServer, type Server, type ServerResponse } from 'node:http';
import { Collector, type DashboardSnapshot } from './collector.js';
import { FrameRelay } from './frame-relay.js';
import { PAGE } from './page.js';

export interface DashboardOptions {
  /** Where the page is served. */
  host: string;
  port: number;
  /** Where the processes serve metrics: metrics.host and metrics.port (the port rule finds each). */
  metricsHost: string;
  metricsPort: number;
  /** Poll interval, ms. */
  intervalMs?: number;
}

/**
 * `framepipe dashboard`: one page (`/`), its live data as Server-Sent Events (`/events`, one
 * snapshot per poll), the same as JSON (`/api/stats`) and live annotated streams
 * (`/streams/NAME.mjpg`). Polls the processes only while it runs; annotation happens only
 * while somebody watches a stream.
 */
export class Dashboard {
  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly collector: Collector;
  private readonly relay: FrameRelay;
  private readonly clients = new Set<ServerResponse>();
  private last: DashboardSnapshot | undefined;
  url = '';

  constructor(private readonly options: DashboardOptions) {
    this.collector = new Collector(options.metricsHost, options.metricsPort);
    this.relay = new FrameRelay(() => this.collector.urls(true), () => this.collector.urls(false));
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const stream = /^\/streams\/(.+)\.mjpg$/.exec(url.pathname);
      if (url.pathname === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(PAGE);
      } else if (url.pathname === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
        this.clients.add(res);
        if (this.last) res.write(`data: ${JSON.stringify(this.last)}\n\n`);
        res.on('close', () => this.clients.delete(res));
      } else if (url.pathname === '/api/stats') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(this.last ?? null));
      } else if (stream) {
        let name: string;
        try {
          name = decodeURIComponent(stream[1]!);
        } catch {
          res.writeHead(400);
          res.end();
          return;
        }
        this.relay.watch(name, res);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    this.server = server;
    const { port } = server.address() as { port: number };
    this.url = `http://${this.options.host}:${port}/`;
    const tick = async () => {
      this.last = await this.collector.poll();
      const data = `data: ${JSON.stringify(this.last)}\n\n`;
      // SSE clients get a snapshot only when their socket has drained: a slow page skips one.
      for (const res of this.clients) if (res.writableLength < 256 * 1024) res.write(data);
      if (this.server) this.timer = setTimeout(() => void tick(), this.options.intervalMs ?? 1000);
    };
    await tick();
    return this.url;
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.relay.close();
    for (const res of this.clients) res.end();
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }
}
