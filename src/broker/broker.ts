import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type * as zmq from 'zeromq';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { Cmd, cmdFrame, decodeInfo, type BrokerStatus, type PeerInfo, type PeerStatus } from '../transport/broker-protocol.js';
import { until } from '../transport/receive.js';
import { bindOrFail, routerSocket, type HopOptions } from '../transport/sockets.js';
import { stageCurve } from '../security/keys.js';
import { SocketWriter } from '../transport/writer.js';
import { HeldJobs, jobKey, resultKey } from './held-jobs.js';

/** The hops the broker dispatches, in pipeline order; the one after `sink` is the way home. */
export const HOPS = ['detect', 'classify', 'sink'] as const;
export type Hop = (typeof HOPS)[number];
type Point = Hop | 'ingest';

interface Peer {
  /** Routing id as the ROUTER gives it. */
  id: Buffer;
  key: string;
  point: Point;
  info: PeerInfo;
  /** Jobs the broker may still hand it. */
  credit: number;
  done: number;
  lastSeen: number;
  /**
   * Heartbeat ticks in a row with nothing heard from it in between. Counted in ticks, not only in
   * time: the broker reads its sockets between any two ticks (Node runs due timers first), so a
   * pause of the broker's own costs a peer one tick, not its liveness.
   */
  silentTicks: number;
  lastDispatch: number;
  /** Dispatch times of jobs it holds, oldest first (to measure its service time). */
  sentAt: number[];
  serviceMs: number;
  rate: number;
  doneAtTick: number;
  /** Since when its heartbeats claim more free credit than the broker counts (see reconcile). */
  creditGapSince?: number;
}

export interface BrokerStats {
  jobs: number;
  dispatched: number;
  results: number;
  expired: number;
  /** Jobs handed back by a replica that died or left, queued again. */
  requeued: number;
  /** DONEs dropped because another copy of the job had already finished. */
  duplicates: number;
  /** Copies of jobs sent to an idle replica while a slower one still held them. */
  hedged: number;
  /** Credits given back to replicas whose heartbeats showed them lost on the way. */
  restored: number;
}

/**
 * The load-balancing broker (zguide ch. 4, "load balancing broker", with credit). It binds one
 * ROUTER per rendezvous point: `ingest` for ingests, and one per hop for that hop's replicas.
 * Jobs wait here in one FIFO per hop and go only to a replica with credit, so a slow replica
 * holds no more than its own concurrency while faster ones take the rest. A replica's DONE
 * returns its credit and carries the job on to the next hop's FIFO; a sink's DONE carries the
 * result, which goes to the ingest whose routing id is the job's origin.
 */
export class Broker {
  readonly stats: BrokerStats = { jobs: 0, dispatched: 0, results: 0, expired: 0, requeued: 0, duplicates: 0, hedged: 0, restored: 0 };
  /** Jobs out at replicas, to hand back if one dies (src/broker/held-jobs.ts). */
  private readonly held = new HeldJobs();
  private readonly sockets = new Map<Point, { socket: zmq.Router; writer: SocketWriter }>();
  private readonly queues = new Map<Hop, Buffer[][]>(HOPS.map((h) => [h, []]));
  private readonly deadlines = new WeakMap<Buffer[], number>();
  private readonly bootId = Buffer.from(randomUUID());
  private readonly peers = new Map<Point, Map<string, Peer>>([...HOPS, 'ingest' as const].map((p) => [p, new Map()]));
  private timer: NodeJS.Timeout | undefined;
  private lastTick = Date.now();

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {}

  /** Binds every rendezvous point; throws StartupError naming one that is taken. */
  async bind(): Promise<Record<Point, string>> {
    const { broker, transport, limits } = this.config;
    const hop: HopOptions = { hwm: Math.max(transport.hwm, 1000), lingerMs: transport.linger_ms, curve: stageCurve(this.config.security) };
    const endpoints = { ingest: broker.ingest, detect: broker.detect, classify: broker.classify, sink: broker.sink };
    for (const [point, endpoint] of Object.entries(endpoints) as [Point, string][]) {
      // ROUTER: the broker addresses replicas and ingests by routing id; ZMQ_ROUTER_MANDATORY off, so
      // a message to a peer that went away is dropped (its job is re-queued or times out) instead of blocking.
      const socket = routerSocket({ ...hop, maxMessageSize: limits.max_message_bytes * 2 + 65536 });
      this.sockets.set(point, { socket, writer: new SocketWriter(socket, 1_000_000) });
      await bindOrFail(socket, endpoint, `broker ${point}`, hop.curve, this.log);
    }
    return endpoints;
  }

  async run(signal: AbortSignal): Promise<void> {
    const interval = this.config.broker.heartbeat_ms;
    this.lastTick = Date.now();
    this.timer = setInterval(() => this.tick(), interval);
    await Promise.all([...this.sockets.entries()].map(([point, { socket }]) => this.loop(point, socket, signal)));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const { writer, socket } of this.sockets.values()) {
      await writer.drain(this.config.transport.linger_ms);
      writer.close();
      socket.close();
    }
  }

  status(): BrokerStatus {
    const now = Date.now();
    const peers: PeerStatus[] = [];
    for (const [point, map] of this.peers) {
      for (const p of map.values()) {
        peers.push({
          stage: point,
          id: p.key,
          host: p.info.host,
          pid: p.info.pid,
          concurrency: p.info.concurrency,
          credit: point === 'ingest' ? p.info.credit : p.credit,
          done: point === 'ingest' ? p.info.done : p.done,
          rate: Math.round(p.rate * 10) / 10,
          serviceMs: Math.round(p.serviceMs * 10) / 10,
          lastSeenMs: now - p.lastSeen,
        });
      }
    }
    const queued: Record<string, number> = {};
    for (const [hop, q] of this.queues) queued[hop] = q.length;
    return { pid: process.pid, host: os.hostname(), queued, peers, stats: { ...this.stats } };
  }

  private async loop(point: Point, socket: zmq.Router, signal: AbortSignal): Promise<void> {
    for await (const frames of until(socket, signal)) {
      try {
        if (point === 'ingest') this.onIngest(frames);
        else this.onReplica(point, frames);
      } catch (err) {
        this.log.warn({ point, err: (err as Error).message }, 'dropped malformed broker message');
      }
    }
  }

  private send(point: Point, frames: Buffer[], hedge = false): void {
    if (point !== 'ingest' && frames[1] === cmdFrame(Cmd.JOB) && !hedge) this.held.dispatched(point, frames[0]!.toString(), frames.slice(2));
    if (!this.sockets.get(point)!.writer.offer(frames)) this.log.error({ point }, 'broker send queue full; message dropped');
  }

  private onIngest(frames: Buffer[]): void {
    const [id, cmd, ...body] = frames as [Buffer, Buffer, ...Buffer[]];
    const key = id.toString();
    switch (cmd?.toString()) {
      case Cmd.JOB:
        this.touch('ingest', id, key, undefined);
        this.stats.jobs++;
        this.queues.get('detect')!.push(body);
        this.dispatch('detect');
        return;
      case Cmd.READY:
      case Cmd.HB:
        this.touch('ingest', id, key, decodeInfo(body[0]));
        return;
      case Cmd.BYE:
        this.peers.get('ingest')!.delete(key);
        return;
      case Cmd.STATUS:
        this.send('ingest', [id, cmdFrame(Cmd.STATUS), Buffer.from(JSON.stringify(this.status()))]);
        return;
      default:
        this.log.warn({ from: key, cmd: cmd?.toString() }, 'unknown command from ingest side');
    }
  }

  private onReplica(hop: Hop, frames: Buffer[]): void {
    const [id, cmd, ...body] = frames as [Buffer, Buffer, ...Buffer[]];
    const key = id.toString();
    const peers = this.peers.get(hop)!;
    switch (cmd?.toString()) {
      case Cmd.READY: {
        const info = decodeInfo(body[0]);
        if (!info) throw new Error('READY without info');
        // A replica that (re)announces itself starts from the credit it states, holding nothing.
        this.requeue(hop, key);
        peers.delete(key);
        this.touch(hop, id, key, info);
        this.log.info({ hop, replica: key, credit: info.credit }, 'replica ready');
        this.dispatch(hop);
        return;
      }
      case Cmd.HB: {
        const known = peers.has(key);
        const info = decodeInfo(body[0]);
        this.touch(hop, id, key, info);
        // From a stranger (the broker restarted, or had written it off) a heartbeat registers it.
        if (!known) {
          this.log.info({ hop, replica: key }, 'replica (re)joined by heartbeat');
          this.dispatch(hop);
        } else if (info) {
          this.reconcile(hop, peers.get(key)!, info);
        }
        return;
      }
      case Cmd.DONE:
      case Cmd.FREE: {
        const peer = peers.get(key);
        if (peer) {
          peer.lastSeen = Date.now();
          peer.credit = Math.min(peer.credit + 1, peer.info.concurrency);
          const sent = peer.sentAt.shift();
          if (sent !== undefined) peer.serviceMs = peer.serviceMs === 0 ? Date.now() - sent : peer.serviceMs * 0.8 + (Date.now() - sent) * 0.2;
        }
        const { verdict, queued } = this.held.settle(hop, key, body.length === 0 ? undefined : hop === 'sink' && cmd.toString() === Cmd.DONE ? resultKey(body) : jobKey(body)?.key);
        if (queued) this.unqueue(hop, queued);
        if (cmd.toString() === Cmd.DONE) {
          if (peer) peer.done++;
          if (verdict === 'duplicate') this.stats.duplicates++;
          else this.forward(hop, body);
        }
        this.dispatch(hop);
        return;
      }
      case Cmd.BYE:
        peers.delete(key);
        this.log.info({ hop, replica: key }, 'replica left');
        this.requeue(hop, key);
        return;
      default:
        this.log.warn({ hop, from: key, cmd: cmd?.toString() }, 'unknown command from replica');
    }
  }

  /**
   * Queued jobs past their deadline leave the queues. Their clients already have TIMEOUT, and
   * while a hop has no replica they would otherwise pile up (image bytes and all) for as long as
   * the outage lasts; with this the queues hold at most the requests still pending at ingests.
   */
  private dropExpired(now: number): void {
    for (const queue of this.queues.values()) {
      let kept = 0;
      for (const frames of queue) {
        if (this.deadlineOf(frames) > now) queue[kept++] = frames;
        else this.stats.expired++;
      }
      queue.length = kept;
    }
  }

  /** A queued job's deadline, read from its header once. */
  private deadlineOf(frames: Buffer[]): number {
    let deadline = this.deadlines.get(frames);
    if (deadline === undefined) {
      deadline = jobKey(frames)?.deadline ?? Infinity;
      this.deadlines.set(frames, deadline);
    }
    return deadline;
  }

  /**
   * Gives back credit lost on the way. A JOB sent while its replica's connection blipped is
   * dropped by the ROUTER (mandatory routing is off), and a DONE can die with a connection: either
   * way the broker counts a slot taken that the replica knows is free, and without this the
   * replica would serve one job fewer for the rest of its life. A heartbeat states the replica's
   * own free credit; more than the broker counts is normal for a moment (a DONE or FREE on its
   * way, a JOB not yet arrived), so the broker believes it only when the next heartbeat says the
   * same with nothing sent to the replica in between. A replica that says it holds nothing gets
   * the jobs the broker thought it held queued again (they are lost with it otherwise).
   */
  private reconcile(hop: Hop, peer: Peer, info: PeerInfo): void {
    const now = Date.now();
    const claimed = Math.min(info.credit, info.concurrency);
    if (claimed <= peer.credit) {
      delete peer.creditGapSince;
      return;
    }
    if (peer.creditGapSince === undefined || peer.lastDispatch >= peer.creditGapSince) {
      peer.creditGapSince = now;
      return;
    }
    const lost = claimed - peer.credit;
    this.stats.restored += lost;
    this.log.warn({ hop, replica: peer.key, lost }, 'credit lost on the way given back to a replica');
    peer.credit = claimed;
    peer.sentAt.splice(0, lost);
    delete peer.creditGapSince;
    if (claimed === info.concurrency) {
      peer.sentAt.length = 0;
      this.requeue(hop, peer.key);
    }
    this.dispatch(hop);
  }

  /** A replica's jobs go back to the front of its hop's queue (those before their deadline). */
  private requeue(hop: Hop, key: string): void {
    const back = this.held.orphaned(hop, key);
    if (back.length === 0) return;
    this.stats.requeued += back.length;
    this.queues.get(hop)!.unshift(...back);
    this.log.warn({ hop, replica: key, jobs: back.length }, 'jobs of a gone replica queued again');
    this.dispatch(hop);
  }

  /** Takes a queued copy out: the job it repeats has been answered. */
  private unqueue(hop: Hop, frames: Buffer[]): void {
    const queue = this.queues.get(hop)!;
    const i = queue.indexOf(frames);
    if (i >= 0) queue.splice(i, 1);
  }

  /** A finished job moves to the next hop's FIFO; a sink's result goes home to its ingest. */
  private forward(hop: Hop, body: Buffer[]): void {
    const next = HOPS[HOPS.indexOf(hop) + 1];
    if (next) {
      this.queues.get(next)!.push(body);
      this.dispatch(next);
      return;
    }
    const [origin, ...result] = body;
    if (!origin) throw new Error('sink result without origin');
    this.stats.results++;
    this.send('ingest', [origin, cmdFrame(Cmd.RESULT), ...result]);
  }

  private touch(point: Point, id: Buffer, key: string, info: PeerInfo | undefined): void {
    const peers = this.peers.get(point)!;
    let peer = peers.get(key);
    const now = Date.now();
    if (!peer) {
      const start = info ?? { stage: point, host: '?', pid: 0, credit: 0, concurrency: 0, done: 0 };
      peer = { id, key, point, info: start, credit: Math.max(0, start.credit), done: 0, lastSeen: now, silentTicks: 0, lastDispatch: 0, sentAt: [], serviceMs: 0, rate: 0, doneAtTick: 0 };
      peers.set(key, peer);
    } else if (info) {
      peer.info = info;
    }
    peer.lastSeen = now;
  }

  /**
   * Hands queued jobs to replicas with credit, each job to the replica expected to FINISH it
   * first: a free slot finishes at now + its service time, a busy one when its oldest job is due
   * plus its service time. The queue is walked in order and planned on those slots; a job whose
   * best slot is free now is sent, one whose best slot is busy stays queued for it. So a 4×
   * slower replica gets only the jobs that would otherwise wait longer than it takes, instead of
   * every job that arrives while the fast one is busy. Jobs never go to a replica without credit,
   * so none hoards a backlog; a replica with no measured service time yet (a newcomer) counts as
   * fast, which is how it gets measured.
   */
  private dispatch(hop: Hop): void {
    const queue = this.queues.get(hop)!;
    const now = Date.now();
    if (queue.length === 0) {
      this.hedge(hop, now);
      return;
    }
    const slots: { peer: Peer; at: number; free: boolean }[] = [];
    for (const peer of this.peers.get(hop)!.values()) {
      const s = peer.serviceMs;
      for (let i = 0; i < peer.credit; i++) slots.push({ peer, at: now, free: true });
      for (const sent of peer.sentAt) {
        // A job long overdue says the estimate is wrong (a stall, a dying replica), and a replica
        // still unmeasured has no estimate at all: plan nothing on that slot. (Planning on an
        // unmeasured replica's busy slot as if it took no time once left a whole backlog waiting
        // for a slow newcomer's first answer.)
        if (s === 0 || now > sent + 2 * s + 100) continue;
        slots.push({ peer, at: Math.max(now, sent + s), free: false });
      }
    }
    let freeLeft = slots.filter((slot) => slot.free).length;
    // Planning further ahead than every slot's next few jobs cannot change what is sent now.
    const horizon = Math.min(queue.length, 4 * slots.length);
    for (let k = 0; k < horizon && freeLeft > 0 && k < queue.length; ) {
      let best: (typeof slots)[number] | undefined;
      for (const slot of slots) {
        if (!best) {
          best = slot;
          continue;
        }
        const finish = slot.at + slot.peer.serviceMs;
        const bestFinish = best.at + best.peer.serviceMs;
        if (finish < bestFinish || (finish === bestFinish && slot.peer.lastDispatch < best.peer.lastDispatch)) best = slot;
      }
      if (!best) return;
      if (best.free) {
        const job = queue.splice(k, 1)[0]!;
        const peer = best.peer;
        peer.credit--;
        peer.lastDispatch = now;
        peer.sentAt.push(now);
        this.stats.dispatched++;
        this.send(hop, [peer.id, cmdFrame(Cmd.JOB), ...job]);
        best.free = false;
        freeLeft--;
      } else {
        k++;
      }
      best.at += best.peer.serviceMs;
      if (best.peer.serviceMs === 0) best.at += 1;
    }
    if (queue.length === 0) this.hedge(hop, now);
  }

  /**
   * Cuts the tail a slow replica adds ("hedged requests", Dean and Barroso, The Tail at Scale):
   * when nothing waits in the hop's queue and a replica has free credit, it gets a copy of the
   * job that another replica is expected to finish latest, if it would itself finish that job
   * clearly earlier (its service time plus a quarter, plus 1 ms). The first answer wins
   * (HeldJobs.settle); the slower copy's answer is dropped. Among replicas of equal speed this
   * never fires (the owner is always due sooner), and it only spends credit that would idle,
   * so it costs throughput nothing; what it costs is the duplicate work on the slow replica.
   * A job overdue at its owner (a stall) counts as never finishing there.
   */
  private hedge(hop: Hop, now: number): void {
    if (!this.config.broker.hedge) return;
    const peers = this.peers.get(hop)!;
    for (const peer of peers.values()) {
      // An unmeasured replica could be the slow one: it is measured by ordinary dispatch first.
      if (peer.credit <= 0 || peer.serviceMs <= 0) continue;
      while (peer.credit > 0) {
        const mine = now + peer.serviceMs * 1.25 + 1;
        let best: { key: string; frames: Buffer[]; due: number } | undefined;
        for (const job of this.held.outstanding(hop, now)) {
          if (job.owner === peer.key) continue;
          const owner = peers.get(job.owner);
          if (!owner) continue;
          const s = owner.serviceMs;
          const due = s > 0 && now <= job.sentAt + 2 * s + 100 ? job.sentAt + s : Infinity;
          if (due > mine && (!best || due > best.due)) best = { key: job.key, frames: job.frames, due };
        }
        if (!best) break;
        this.held.hedged(hop, best.key, peer.key);
        peer.credit--;
        peer.lastDispatch = now;
        peer.sentAt.push(now);
        this.stats.hedged++;
        this.send(hop, [peer.id, cmdFrame(Cmd.JOB), ...best.frames], true);
      }
    }
  }

  /** Every heartbeat: tell replicas the broker lives, write off the silent ones, update rates. */
  private tick(): void {
    const { heartbeat_ms, liveness } = this.config.broker;
    const now = Date.now();
    const previous = this.lastTick;
    const dt = Math.max(1, now - previous) / 1000;
    this.lastTick = now;
    this.held.sweep(now, 60_000);
    this.dropExpired(now);
    // Plans made on a slot that is now overdue (a stall) are remade, and with nothing queued an
    // idle replica may take a copy of a stalled job (dispatch → hedge).
    for (const hop of HOPS) this.dispatch(hop);
    for (const [point, peers] of this.peers) {
      for (const [key, p] of peers) {
        p.silentTicks = p.lastSeen > previous ? 0 : p.silentTicks + 1;
        // After a pause of the broker's own (a host stall, GC, SIGSTOP) every peer looks silent
        // for a long time while its heartbeats wait unread; it has missed one tick, not `liveness`.
        if (p.silentTicks >= liveness && now - p.lastSeen > heartbeat_ms * liveness) {
          peers.delete(key);
          this.log.warn({ point, peer: key, silentMs: now - p.lastSeen }, 'peer stopped heart-beating; out of dispatch');
          if (point !== 'ingest') this.requeue(point, key);
          continue;
        }
        const done = point === 'ingest' ? p.info.done : p.done;
        p.rate = p.rate * 0.5 + ((done - p.doneAtTick) / dt) * 0.5;
        p.doneAtTick = done;
        // Ingests get the broker's boot id: a new one tells them their queued jobs died with the old broker.
        this.send(point, point === 'ingest' ? [p.id, cmdFrame(Cmd.HB), this.bootId] : [p.id, cmdFrame(Cmd.HB)]);
      }
    }
  }
}
