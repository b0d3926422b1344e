import type * as zmq from 'zeromq';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { meters } from '../metrics/meters.js';
import { ErrorCode, toWireError, type WireError } from '../protocol/errors.js';
import { decodeResult, encodeJob, epochMs, type Job } from '../protocol/job.js';
import { encodeReply, errorReply, skippedReply, type RequestSalvage } from '../protocol/request.js';
import { until } from '../transport/receive.js';
import { adoptClientFile, PartStore, type SharedDir } from '../transport/shared-parts.js';
import { SocketWriter } from '../transport/writer.js';
import { IngestProcessor, type ClientRequest } from './ingest-processor.js';
import { LatestFrames } from './latest-frames.js';
import { PendingRequests, type PendingRequest } from './pending.js';

/** Where ingest's jobs go and its results come from: the first stage and the sinks (direct), or the broker. */
export interface Upstream {
  /** Queues a job unless the queue is full; never waits. */
  offer(frames: Buffer[]): boolean;
  /** Results (`[ResultMeta, reply]`) until `signal` aborts. */
  results(signal: AbortSignal): AsyncIterable<Buffer[]>;
  /** Stops taking jobs. */
  close?(): void;
}

/** Direct mode: PUSH jobs to detect, PULL results from the sinks. */
export function directUpstream(next: zmq.Push, replies: zmq.Pull, capacity: number): Upstream {
  // The in-flight limit is what bounds this queue; the writer only keeps order.
  const writer = new SocketWriter(next, capacity);
  return {
    offer: (frames) => writer.offer(frames),
    results: (signal) => until(replies, signal),
    close: () => writer.close(),
  };
}

export interface IngestSockets {
  /** ROUTER bound for clients (REQ and DEALER). */
  clients: zmq.Router;
  upstream: Upstream;
}

export interface IngestStats {
  accepted: number;
  answered: number;
  rejected: number;
  timedOut: number;
  late: number;
  /** Latest-frame mode: frames answered SKIPPED (part of `answered`, not errors). */
  skipped: number;
  /** Images clients on this host handed over as /dev/shm files (header `shm`) that ingest took over. */
  clientFiles: number;
}

/**
 * Ingest's two loops. Client messages become jobs (or an error reply at once); results from
 * sinks go back on the connection the request came in on. Every accepted request has a timer
 * at its deadline, so each gets exactly one reply: the result or TIMEOUT, whichever is first.
 * Latest-frame requests (header `latest`) add a third possible answer, SKIPPED, for a frame a
 * newer one of its stream replaced before it entered the pipeline (LatestFrames keeps the count).
 */
export class IngestServer {
  readonly stats: IngestStats = { accepted: 0, answered: 0, rejected: 0, timedOut: 0, late: 0, skipped: 0, clientFiles: 0 };
  private readonly pending = new PendingRequests();
  private readonly latest: LatestFrames;
  private readonly toClients: SocketWriter;
  private readonly processor: IngestProcessor;
  private readonly store?: PartStore;
  private draining = false;
  /** Broker mode: keep each job's frames until answered, to send them again if the broker restarts. */
  keepJobs = false;

  constructor(
    private readonly config: Config,
    private readonly sockets: IngestSockets,
    /** This ingest's reply endpoint as sinks reach it. */
    readonly origin: string,
    private readonly log: Logger,
    /** Where large images go when the first hop stays on this host (`transport.shared_memory`). */
    private readonly shared?: SharedDir,
  ) {
    this.processor = new IngestProcessor(config, origin);
    if (shared) {
      this.store = new PartStore(config.transport.shared_memory_min_bytes, 'ingest');
      // A stage may still write a part for a job answered TIMEOUT meanwhile: swept here.
      shared.sweepEvery(10_000, (job) => this.pending.get(job) !== undefined);
    }
    this.latest = new LatestFrames(config.limits.latest_inflight);
    // Replies to clients never wait (ROUTER drops for a gone peer), so a generous queue is fine.
    this.toClients = new SocketWriter(sockets.clients, 100_000);
  }

  describe(): Record<string, unknown> {
    return this.processor.describe();
  }

  /** Requests accepted and not yet answered. */
  get inflight(): number {
    return this.pending.size;
  }

  /**
   * Runs until `signal` aborts, then drains: new requests get OVERLOADED at once while results for
   * the accepted ones keep arriving (a latest-frame box's frame still goes in when its turn
   * comes), for up to `graceMs`; whatever is still pending then gets
   * OVERLOADED too. So every request, even one that lands during shutdown, gets its one reply.
   */
  async serve(signal: AbortSignal, graceMs = 2000): Promise<void> {
    const loops = new AbortController();
    const drain = async () => {
      this.draining = true;
      const until = Date.now() + graceMs;
      while (this.pending.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      this.answerAllOverloaded();
      loops.abort();
    };
    const draining = new Promise<void>((resolve) => {
      const start = () => void drain().then(resolve);
      if (signal.aborted) start();
      else signal.addEventListener('abort', start, { once: true });
    });
    await Promise.all([this.clientLoop(loops.signal), this.replyLoop(loops.signal), draining]);
  }

  private async clientLoop(signal: AbortSignal): Promise<void> {
    for await (const frames of until(this.sockets.clients, signal)) this.onClientMessage(frames);
  }

  private async replyLoop(signal: AbortSignal): Promise<void> {
    for await (const frames of this.sockets.upstream.results(signal)) this.onResult(frames);
  }

  private onClientMessage(frames: Buffer[]): void {
    // ROUTER prepends the peer's routing id. REQ adds an empty delimiter; a DEALER may or may not.
    const delimited = frames.length > 1 && frames[1]!.length === 0;
    const envelope = frames.slice(0, delimited ? 2 : 1);
    const body = frames.slice(envelope.length);
    const salvage: RequestSalvage = { id: null, format: 'msgpack' };
    const clientRequest: ClientRequest = { body, salvage };
    let job: Job;
    try {
      job = this.processor.toJob(clientRequest);
    } catch (err) {
      this.rejectNow(envelope, salvage.id, salvage.format, toWireError(err));
      return;
    }
    const meta = job.meta;
    if (this.draining) {
      this.rejectNow(envelope, meta.id, meta.format ?? 'msgpack', { code: ErrorCode.OVERLOADED, message: 'ingest is shutting down; retry' }, meta);
      return;
    }
    const request: Omit<PendingRequest, 'timer' | 'job'> = { envelope, id: meta.id, format: meta.format ?? 'msgpack' };
    if (meta.stream !== undefined) request.stream = meta.stream;
    if (meta.frame !== undefined) request.frame = meta.frame;
    if (clientRequest.latest && meta.stream !== undefined) this.admitLatest(job, meta.stream, request);
    else this.start(job, request);
  }

  /** Sends a new request's job into the pipeline and holds the request; false when it was answered OVERLOADED instead. */
  private start(job: Job, request: Omit<PendingRequest, 'timer' | 'job'>): boolean {
    const meta = job.meta;
    if (this.pending.size >= this.config.limits.max_inflight) {
      this.rejectNow(request.envelope, meta.id, meta.format ?? 'msgpack', this.full(), meta);
      return false;
    }
    let jobFrames: Buffer[];
    try {
      jobFrames = this.encode(job);
    } catch (err) {
      this.rejectNow(request.envelope, meta.id, meta.format ?? 'msgpack', toWireError(err), meta);
      return false;
    }
    if (!this.sockets.upstream.offer(jobFrames)) {
      this.shared?.release(meta.job, meta.written ?? []);
      this.rejectNow(request.envelope, meta.id, meta.format ?? 'msgpack', this.full(), meta);
      return false;
    }
    this.stats.accepted++;
    if (meta.written) request.shared = meta.written;
    if (this.keepJobs) request.frames = jobFrames;
    this.hold(job, request);
    return true;
  }

  /**
   * Latest-frame mode: the frame goes in if its stream has fewer than `limits.latest_inflight`
   * in the pipeline; otherwise it waits in the stream's box, and the frame it pushes out of
   * the box (older, never started) is answered SKIPPED. A boxed frame is held like any other
   * request (its deadline runs, it counts against max_inflight) but has no job frames yet.
   */
  private admitLatest(job: Job, stream: string, request: Omit<PendingRequest, 'timer' | 'job'>): void {
    request.latest = stream;
    // Only a frame that goes into an empty box or the pipeline adds to what ingest holds.
    if (this.latest.boxIsEmpty(stream) && this.pending.size >= this.config.limits.max_inflight) {
      this.rejectNow(request.envelope, job.meta.id, job.meta.format ?? 'msgpack', this.full(), job.meta);
      return;
    }
    const admission = this.latest.admit(stream, job);
    if (admission.action === 'send') {
      if (this.start(job, request)) this.latest.started(stream);
      return;
    }
    this.stats.accepted++;
    this.hold(job, request);
    const displaced = admission.displaced && this.pending.take(admission.displaced.meta.job);
    if (displaced) {
      this.stats.skipped++;
      this.log.debug({ job: admission.displaced!.meta.job, id: displaced.id, stream, by: job.meta.id }, 'frame skipped: a newer one of its stream arrived');
      this.reply(displaced, encodeReply(skippedReply({ id: displaced.id, stream, ...(displaced.frame !== undefined ? { frame: displaced.frame } : {}) }, job.meta), displaced.format));
    }
  }

  /** A boxed frame's turn: one of its stream's frames in flight was answered. */
  private promote(job: Job): void {
    const meta = job.meta;
    const req = this.pending.get(meta.job);
    // Not pending means already answered (its deadline passed); the box let go of it then.
    if (!req || req.latest === undefined) return;
    // How long the frame waited in its box at ingest: `ingest_wait` in the reply's timings.
    meta.timings.ingest_wait = Math.max(0, Date.now() - meta.accepted);
    let jobFrames: Buffer[];
    try {
      jobFrames = this.encode(job);
    } catch (err) {
      this.pending.take(meta.job);
      meters()?.errors.inc({ code: toWireError(err).code });
      // Never started, so it holds no slot of its stream (unlike a frame answered from the pipeline).
      this.reply(req, encodeReply(errorReply(req.id, toWireError(err), req), req.format));
      return;
    }
    if (meta.written) req.shared = meta.written;
    if (!this.sockets.upstream.offer(jobFrames)) {
      this.pending.take(meta.job);
      meters()?.errors.inc({ code: ErrorCode.OVERLOADED });
      this.reply(req, encodeReply(errorReply(req.id, this.full(), req), req.format));
      return;
    }
    if (this.keepJobs) req.frames = jobFrames;
    this.latest.started(req.latest);
  }

  /**
   * The job's frames for the first hop; with shared memory, a large image is written to it here.
   * A client's file (`shm`) is taken over here, not earlier: a request answered before its job
   * goes in leaves the file to the client. Throws BadRequestError if that file is gone.
   */
  private encode(job: Job): Buffer[] {
    const meta = job.meta;
    if (this.shared) meta.shm = this.shared.path;
    if (job.clientFile) {
      const { name, size, part } = job.clientFile;
      const taken = adoptClientFile(name, size, this.shared, meta.job, part);
      delete job.clientFile;
      this.stats.clientFiles++;
      if ('bytes' in taken) {
        job[part] = taken.bytes;
      } else {
        job.shared = { [part]: taken.shared };
        (meta.written ??= []).push(taken.shared.file);
      }
    }
    meta.handoff = epochMs();
    return encodeJob(job, this.store);
  }

  private full(): WireError {
    return { code: ErrorCode.OVERLOADED, message: `pipeline is full (${this.pending.size} requests in flight); retry later` };
  }

  /** Holds an accepted request until its result or its deadline, whichever comes first, answers it. */
  private hold(job: Job, request: Omit<PendingRequest, 'timer' | 'job'>): void {
    const meta = job.meta;
    this.pending.add(meta.job, request, meta.deadline, (req) => {
      this.stats.timedOut++;
      meters()?.errors.inc({ code: ErrorCode.TIMEOUT });
      const timeout = meta.deadline - meta.accepted;
      this.log.debug({ job: meta.job, id: req.id, code: ErrorCode.TIMEOUT }, 'request timed out');
      this.reply(req, encodeReply(errorReply(req.id, { code: ErrorCode.TIMEOUT, message: `no result within ${timeout} ms` }, req), req.format));
      this.released(req, meta.job);
    });
  }

  /** After a request's one reply: a latest-mode frame frees its stream's slot (or box), which may let the boxed frame go in. */
  private released(req: PendingRequest, job: number): void {
    if (req.latest === undefined) return;
    const next = this.latest.answered(req.latest, job);
    if (next) this.promote(next);
  }

  private onResult(frames: Buffer[]): void {
    let result;
    try {
      result = decodeResult(frames);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'dropped malformed result');
      return;
    }
    const req = this.pending.take(result.meta.job);
    if (!req) {
      // Already answered with TIMEOUT: the one reply has gone out, this one must not.
      this.stats.late++;
      this.log.debug({ job: result.meta.job }, 'late result dropped (already answered TIMEOUT)');
      // Its files written after the answer would otherwise wait for the sweep.
      if (result.meta.shared?.length) this.shared?.release(result.meta.job, result.meta.shared);
      return;
    }
    this.reply(req, result.reply, result.meta.job, result.meta.shared);
    this.released(req, result.meta.job);
  }

  /**
   * Sends a request's one reply. `written`: the job's files in shared memory as its result lists
   * them (ingest's own among them: the list grows along the chain). Without a result (TIMEOUT,
   * shutdown) only ingest's own are known; the rest go with the stage that drops the expired
   * job, the late result, or the sweep.
   */
  private reply(req: PendingRequest, body: Buffer, job?: number, written?: readonly string[]): void {
    this.stats.answered++;
    // Answered: nobody needs the job's shared files any more (a straggling copy fails to read them, harmlessly).
    const files = written ?? req.shared;
    if (files) this.shared?.release(req.job, files);
    if (!this.toClients.offer([...req.envelope, body])) this.log.error({ job, id: req.id }, 'client reply queue full; reply dropped');
  }

  private rejectNow(
    envelope: Buffer[],
    id: string | number | null,
    format: 'msgpack' | 'json',
    error: WireError,
    extra?: { stream?: string; frame?: number; job?: number },
  ): void {
    this.stats.rejected++;
    meters()?.errors.inc({ code: error.code });
    this.log.debug({ job: extra?.job, id, code: error.code, message: error.message }, 'request rejected');
    this.toClients.offer([...envelope, encodeReply(errorReply(id, error, extra), format)]);
  }

  /**
   * A restarted broker lost every job it had queued or handed out: send again what is still
   * waiting. A job whose first copy does finish after all is answered once anyway (the pending
   * table answers each job once), so a re-send costs at most duplicate work, never a reply.
   */
  resendPending(): number {
    let sent = 0;
    for (const req of this.pending.waiting()) {
      if (req.frames && this.sockets.upstream.offer(req.frames)) sent++;
    }
    this.log.info({ resent: sent }, 'jobs sent again after a broker restart');
    return sent;
  }

  /** Shutdown: whatever is still held, in the pipeline or in a latest-frame box, gets OVERLOADED. */
  private answerAllOverloaded(): void {
    for (const req of this.pending.drain()) {
      this.reply(req, encodeReply(errorReply(req.id, { code: ErrorCode.OVERLOADED, message: 'ingest is shutting down; retry' }, req), req.format));
    }
    this.latest.clear();
  }

  /** After serve() returned: hands the last replies to the socket, then lets go. */
  async close(): Promise<void> {
    this.answerAllOverloaded();
    await this.toClients.drain(this.config.transport.linger_ms);
    this.sockets.upstream.close?.();
    this.toClients.close();
  }
}
