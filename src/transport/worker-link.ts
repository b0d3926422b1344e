import os from 'node:os';
import type * as zmq from 'zeromq';
import type { Logger } from '../log.js';
import { Cmd, cmdFrame, encodeInfo, peerName, type PeerInfo } from './broker-protocol.js';
import { until } from './receive.js';
import { connectHop, linkDealer, type HopOptions } from './sockets.js';
import { SocketWriter } from './writer.js';

export interface LinkSettings extends HopOptions {
  /** The stage this process is a replica of (or `ingest`). */
  stage: string;
  /** The broker's rendezvous point for that stage. */
  endpoint: string;
  /**
   * Jobs held at once: the credit announced in READY, and the cap the broker keeps it under. A
   * stage that batches across requests passes concurrency × batch size: with less, the broker
   * would never hand it enough jobs to fill a batch.
   */
  concurrency: number;
  heartbeatMs: number;
  liveness: number;
  /** Messages that may wait to be sent; default four per credit. */
  queue?: number;
}

/**
 * A process's one DEALER to the broker, with heartbeats both ways. The routing id stays the
 * same across reconnects, and ZeroMQ reconnects by itself with exponential back-off
 * (ZMQ_RECONNECT_IVL..ZMQ_RECONNECT_IVL_MAX), so after a broker restart the next heartbeat —
 * which states this process's free credit — registers it again with nothing restarted.
 */
export class BrokerLink {
  readonly name: string;
  readonly socket: zmq.Dealer;
  protected readonly writer: SocketWriter;
  /** Jobs received and not yet answered with DONE or FREE. */
  held = 0;
  done = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastHeard = Date.now();
  private silent = false;

  constructor(
    protected readonly settings: LinkSettings,
    protected readonly log: Logger,
  ) {
    this.name = peerName(settings.stage);
    this.socket = linkDealer({ ...settings, routingId: this.name, reconnectMs: 100, reconnectMaxMs: Math.max(100, settings.heartbeatMs) });
    // Holds at most `concurrency` results plus heartbeats; send() waits beyond that.
    this.writer = new SocketWriter(this.socket, settings.queue ?? Math.max(64, settings.concurrency * 4));
  }

  info(): PeerInfo {
    const { stage, concurrency } = this.settings;
    return { stage, host: os.hostname(), pid: process.pid, credit: Math.max(0, concurrency - this.held), concurrency, done: this.done };
  }

  /** Connects and announces itself; heartbeats from then on. */
  start(announce: Cmd = Cmd.READY): void {
    connectHop(this.socket, this.settings.endpoint, this.settings.curve);
    this.writer.offer([cmdFrame(announce), encodeInfo(this.info())]);
    this.timer = setInterval(() => this.beat(), this.settings.heartbeatMs);
  }

  private beat(): void {
    const silentFor = Date.now() - this.lastHeard;
    if (!this.silent && this.expectsHeartbeats && silentFor > this.settings.heartbeatMs * this.settings.liveness) {
      this.silent = true;
      this.log.warn({ broker: this.settings.endpoint, silentMs: silentFor }, 'broker silent; reconnecting in the background');
    }
    // Never queue heartbeats behind a broker that is gone: one is enough to re-register.
    if (this.writer.length === 0) this.writer.offer([cmdFrame(Cmd.HB), encodeInfo(this.info())]);
  }

  /** True while the broker has been silent longer than heartbeat × liveness (its /readyz says so). */
  get brokerSilent(): boolean {
    return this.silent;
  }

  /** Whether the broker heart-beats to this kind of peer (replicas yes, ingests no). */
  protected expectsHeartbeats = true;

  /** Called for every message from the broker: proves it alive. */
  protected heard(): void {
    this.lastHeard = Date.now();
    if (this.silent) {
      this.silent = false;
      this.log.info({ broker: this.settings.endpoint }, 'broker back');
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.writer.offer([cmdFrame(Cmd.BYE)]);
    await this.writer.drain(this.settings.lingerMs);
    this.writer.close();
    this.socket.close();
  }
}

/** A stage replica's link: jobs in by credit, DONE (the job for the next hop) or FREE out. */
export class WorkerLink extends BrokerLink {
  /** The jobs the broker hands this replica, until `signal` aborts. */
  async *jobs(signal: AbortSignal): AsyncGenerator<Buffer[]> {
    for await (const frames of until(this.socket, signal)) {
      this.heard();
      const cmd = frames[0]?.toString();
      if (cmd === Cmd.JOB) {
        this.held++;
        yield frames.slice(1);
      } else if (cmd !== Cmd.HB) {
        this.log.warn({ cmd }, 'unknown command from broker');
      }
    }
  }

  /** Passes a finished job on (a sink: origin + result) and returns one credit. */
  finish(frames: Buffer[]): Promise<void> {
    this.held = Math.max(0, this.held - 1);
    this.done++;
    return this.writer.send([cmdFrame(Cmd.DONE), ...frames]);
  }

  /** Returns one credit for a job that produced nothing (expired or malformed); `meta` (its JobMeta frame) names the job. */
  release(meta?: Buffer): void {
    this.held = Math.max(0, this.held - 1);
    void this.writer.send(meta ? [cmdFrame(Cmd.FREE), meta] : [cmdFrame(Cmd.FREE)]).catch(() => {});
  }
}

/** Ingest's link: jobs out (bounded, never waits), results home by routing id = its origin name. */
export class IngestLink extends BrokerLink {
  protected override expectsHeartbeats = false;
  /** The boot id of the broker heard last: a new one means the broker restarted and lost its queues. */
  private brokerBoot: string | undefined;
  /** Called when a restarted broker is first heard (ingest re-sends what it still waits for). */
  onBrokerRestart: (() => void) | undefined;

  /** Queues a job for the broker unless the queue is full (ingest answers OVERLOADED then). */
  offer(frames: Buffer[]): boolean {
    return this.writer.offer([cmdFrame(Cmd.JOB), ...frames]);
  }

  /** Asks the broker for its table of live peers (`framepipe status`). */
  requestStatus(): void {
    this.writer.offer([cmdFrame(Cmd.STATUS)]);
  }

  async *results(signal: AbortSignal): AsyncGenerator<Buffer[]> {
    for await (const frames of until(this.socket, signal)) {
      this.heard();
      const cmd = frames[0]?.toString();
      if (cmd === Cmd.RESULT) {
        this.done++;
        yield frames.slice(1);
      } else if (cmd === Cmd.HB && frames[1]) {
        const boot = frames[1].toString();
        if (this.brokerBoot !== undefined && boot !== this.brokerBoot) {
          this.log.warn({ broker: this.settings.endpoint }, 'broker restarted; re-sending the jobs still waiting for results');
          this.onBrokerRestart?.();
        }
        this.brokerBoot = boot;
      }
    }
  }
}
