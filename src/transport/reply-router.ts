import type * as zmq from 'zeromq';
import type { Logger } from '../log.js';
import { connectHop, pushSocket, type HopOptions } from './sockets.js';
import { SocketWriter } from './writer.js';

/** ZMQ_SNDTIMEO of a route, ms: how long one result may wait for an unreachable ingest. */
const ROUTE_SEND_TIMEOUT_MS = 1000;
/** Results queued per route before dropping: replies are small, and a live ingest reads them at once. */
const ROUTE_QUEUE = 1000;
/** A route unused this long is closed (ingests come and go, e.g. pods with new addresses). */
const ROUTE_IDLE_MS = 60_000;

interface Route {
  socket: zmq.Push;
  writer: SocketWriter;
  lastUsed: number;
}

/**
 * Sink's way home: one PUSH per ingest endpoint seen in jobs, connected on first use. A job
 * names the ingest that holds its client (`origin`), so replies reach the right ingest however
 * many ingests and sinks run. One dead ingest must not stall the others: sends never make the
 * sink wait, a route's queue is bounded, and a send to an unreachable ingest gives up after
 * ROUTE_SEND_TIMEOUT_MS (that ingest's clients are gone with it).
 */
export class ReplyRouter {
  private readonly routes = new Map<string, Route>();
  private readonly sweeper: NodeJS.Timeout;
  dropped = 0;

  constructor(
    private readonly hop: HopOptions,
    private readonly log: Logger,
  ) {
    this.sweeper = setInterval(() => this.sweep(), ROUTE_IDLE_MS).unref();
  }

  send(origin: string, frames: Buffer[]): Promise<void> {
    let route = this.routes.get(origin);
    if (!route) {
      const socket = pushSocket(this.hop);
      socket.sendTimeout = ROUTE_SEND_TIMEOUT_MS;
      connectHop(socket, origin, this.hop.curve);
      route = { socket, writer: new SocketWriter(socket, ROUTE_QUEUE), lastUsed: 0 };
      this.routes.set(origin, route);
      this.log.debug({ origin }, 'connected to ingest');
    }
    route.lastUsed = Date.now();
    if (!route.writer.offer(frames)) {
      this.dropped++;
      this.log.warn({ origin, dropped: this.dropped }, 'ingest not taking results; result dropped');
    }
    return Promise.resolve();
  }

  async close(drainMs: number): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.routes.values()].map((r) => r.writer.drain(drainMs)));
    for (const origin of [...this.routes.keys()]) this.closeRoute(origin);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [origin, route] of this.routes) {
      if (now - route.lastUsed > ROUTE_IDLE_MS && route.writer.length === 0) this.closeRoute(origin);
    }
  }

  private closeRoute(origin: string): void {
    const route = this.routes.get(origin);
    if (!route) return;
    route.writer.close();
    route.socket.close();
    this.routes.delete(origin);
  }
}
