import type { Logger } from '../log.js';
import { pushSocket, type HopOptions } from './sockets.js';
import { SocketWriter } from './writer.js';
import type * as zmq from 'zeromq';

/**
 * Sink's way home: one PUSH per ingest endpoint seen in jobs, connected on first use. A job
 * names the ingest that holds its client (`origin`), so replies reach the right ingest however
 * many ingests and sinks run.
 */
export class ReplyRouter {
  private readonly routes = new Map<string, { socket: zmq.Push; writer: SocketWriter }>();

  constructor(
    private readonly hop: HopOptions,
    private readonly log: Logger,
  ) {}

  send(origin: string, frames: Buffer[]): Promise<void> {
    let route = this.routes.get(origin);
    if (!route) {
      const socket = pushSocket(this.hop);
      socket.connect(origin);
      route = { socket, writer: new SocketWriter(socket, this.hop.hwm) };
      this.routes.set(origin, route);
      this.log.debug({ origin }, 'connected to ingest');
    }
    return route.writer.send(frames);
  }

  async close(drainMs: number): Promise<void> {
    await Promise.all([...this.routes.values()].map((r) => r.writer.drain(drainMs)));
    for (const r of this.routes.values()) {
      r.writer.close();
      r.socket.close();
    }
    this.routes.clear();
  }
}
