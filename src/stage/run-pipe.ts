import { decodeJob, dropParts, epochMs, loadParts, type Job } from '../protocol/job.js';
import { ErrorCode, toWireError } from '../protocol/errors.js';
import type { Logger } from '../log.js';
import { meters, waitSeconds } from '../metrics/meters.js';
import { until, type ReadableSocket } from '../transport/receive.js';
import { deleteParts } from '../transport/shared-parts.js';
import type { StageProcessor } from './processor.js';

/** Where jobs come from: a PULL socket (direct mode) or the broker's credit-based dispatch. */
export type JobInput = ReadableSocket | { jobs(signal: AbortSignal): AsyncIterable<Buffer[]> };

/** Cross-request batching of a stage (config `<stage>.batch`). */
export interface BatchOptions {
  /** Most jobs handed to the processor at once; 1 = no batching (no timer, no added latency). */
  maxSize: number;
  /** How long after the first job of a batch the stage waits for more, ms; 0 = take only what is already waiting. */
  maxWaitMs: number;
}

export interface PipeOptions<Out> {
  stage: string;
  input: JobInput;
  processor: StageProcessor<Job, Out>;
  /** Where a finished job goes; awaited, so a slow consumer slows the intake (back-pressure). */
  emit: (out: Out) => Promise<void>;
  /** Turns a failed or expired job into something to emit (detect/classify: the job itself, carrying its error). */
  onFailure: (job: Job) => Out;
  /** Batches processed at once (a batch is one job when batching is off). */
  concurrency: number;
  /** Cross-request batching; absent = one job at a time. */
  batch?: BatchOptions;
  /** Called with a job's frames when it ends without anything emitted (malformed, expired): broker mode returns its credit. */
  dropped?: (frames: Buffer[]) => void;
  log: Logger;
  /** Aborts when the stage should stop taking work. */
  signal: AbortSignal;
}

export interface PipeStats {
  received: number;
  done: number;
  failed: number;
  expired: number;
  malformed: number;
  /** Failed jobs whose failure could not be passed on either (a bug in onFailure). */
  dropped: number;
}

/** What toFailure() gives for a job with nothing to pass on; never a processor's output. */
const DROPPED: unique symbol = Symbol('dropped');

const NO_BATCH: BatchOptions = { maxSize: 1, maxWaitMs: 0 };

/**
 * The loop every stage runs: take a job, hand it to the processor, pass the result on. A
 * malformed message or a throwing processor costs one job, never the stage: failures travel
 * on as the job's `error` so the sink can answer the client with it.
 *
 * With batching (`batch.maxSize` > 1) the loop gathers: after the first job it keeps taking
 * jobs that are waiting or arrive until it holds `maxSize` or `maxWaitMs` have passed since the
 * first, then hands the batch to the processor's processBatch() (or, for a model with a fixed
 * batch of 1, to process() job after job). `concurrency` then counts batches in flight. A job's
 * `<stage>_wait` ends when the processing of its batch begins, so it includes the gathering;
 * `<stage>` runs from there to when its result is ready (the whole batched call, or the jobs
 * before it in a loop), so that wait + compute is still the job's whole time in the stage.
 */
export async function runPipe<Out>(options: PipeOptions<Out>): Promise<PipeStats> {
  const { input, processor, emit, onFailure, log } = options;
  const batching = options.batch ?? NO_BATCH;
  const stats: PipeStats = { received: 0, done: 0, failed: 0, expired: 0, malformed: 0, dropped: 0 };
  // Batches in flight, and the intake loop's wake-up when one ends: a counter, not a set of
  // promises raced for each job (a race adds a reaction to every pending batch, each time).
  let active = 0;
  let slotFree: (() => void) | undefined;
  const ended = (): void => {
    active--;
    const wake = slotFree;
    slotFree = undefined;
    wake?.();
  };
  const endedBadly = (err: unknown): void => {
    // handle() catches what a job can throw; this is a bug, and still must not stall the intake.
    ended();
    log.error({ err: errorText(err) }, 'job handling failed');
  };
  // Each job's message, for dropped() when a job ends with nothing passed on (broker mode only).
  const framesOf = new WeakMap<Job, Buffer[]>();
  /**
   * A job ends here with nothing passed on (expired, or its failure cannot be passed on): nothing
   * will reach ingest for it, so the files stages wrote for it go here, and broker mode gets the
   * replica's credit back.
   */
  const endHere = (job: Job, frames: Buffer[] | undefined): void => {
    const meta = job.meta;
    if (meta.written) deleteParts(meta.shm, meta.job, meta.written);
    if (frames) options.dropped?.(frames);
  };
  const oneEnds = () => new Promise<void>((resolve) => (slotFree = resolve));
  // Undefined when metrics are off: then each hook below is one check.
  const m = meters();

  /** A job to work on, or undefined when it ends here (malformed, expired: nothing to emit). */
  const take = (frames: Buffer[]): Job | undefined => {
    let job: Job;
    try {
      job = decodeJob(frames);
    } catch (err) {
      // Without a readable header there is nobody to answer; the ingest's deadline will.
      stats.malformed++;
      m?.jobs.inc({ outcome: 'malformed' });
      log.warn({ err: errorText(err) }, 'dropped malformed job');
      options.dropped?.(frames);
      return undefined;
    }
    const meta = job.meta;
    if (!meta.error && Date.now() > meta.deadline) {
      // Ingest has already answered TIMEOUT; doing the work would only delay live requests.
      stats.expired++;
      m?.jobs.inc({ outcome: 'expired' });
      log.debug({ job: meta.job, id: meta.id }, 'dropped expired job');
      endHere(job, frames);
      return undefined;
    }
    if (options.dropped) framesOf.set(job, frames);
    return job;
  };

  const pass = async (out: Out | typeof DROPPED, job: Job): Promise<void> => {
    if (out === DROPPED) return;
    job.meta.handoff = epochMs();
    try {
      await emit(out);
    } catch (err) {
      log.error({ job: job.meta.job, id: job.meta.id, err: errorText(err) }, 'could not pass job on');
    }
  };

  const succeeded = (job: Job, t0: number): void => {
    stats.done++;
    m?.jobs.inc({ outcome: 'ok' });
    finished(job, t0);
  };

  /**
   * onFailure(job), or DROPPED when even that throws (a bug): then nothing can be passed on, so
   * the job ends here like an expired one (the ingest's deadline answers the client, broker mode
   * gets the credit back) and the jobs beside it in its batch go on.
   */
  const toFailure = (job: Job): Out | typeof DROPPED => {
    try {
      return onFailure(job);
    } catch (err) {
      const meta = job.meta;
      // Counted once already (error or passed); the error log is what says it went nowhere.
      stats.dropped++;
      log.error({ job: meta.job, id: meta.id, err: errorText(err) }, 'could not pass a failed job on; dropped');
      endHere(job, framesOf.get(job));
      return DROPPED;
    }
  };

  /** The job's error travels on; its image does not. */
  const failed = (job: Job, err: unknown, t0: number): Out | typeof DROPPED => {
    const meta = job.meta;
    stats.failed++;
    meta.error = toWireError(err);
    if (m) {
      m.jobs.inc({ outcome: 'error' });
      m.errors.inc({ code: meta.error.code });
    }
    const level = meta.error.code === ErrorCode.INTERNAL ? 'error' : 'debug';
    log[level]({ job: meta.job, id: meta.id, code: meta.error.code, err: errorText(err) }, 'job failed');
    dropParts(job);
    delete meta.pixels;
    finished(job, t0);
    return toFailure(job);
  };

  const finished = (job: Job, t0: number): void => {
    job.meta.timings[options.stage] = performance.now() - t0;
    m?.processing.observe(job.meta.timings[options.stage]! / 1000);
  };

  /** process() on each job in turn: batching off, a batch of one, or a model without processBatch(). */
  const loop = async (jobs: Job[], t0: number): Promise<void> => {
    for (const job of jobs) {
      m?.inflight.inc();
      let out: Out | typeof DROPPED;
      try {
        out = await processor.process(job);
        succeeded(job, t0);
      } catch (err) {
        out = failed(job, err, t0);
      }
      m?.inflight.dec();
      await pass(out, job);
    }
  };

  /** One processBatch() call; if it throws as a whole, every job gets process() of its own. */
  const together = async (jobs: Job[], t0: number): Promise<void> => {
    let outcomes: PromiseSettledResult<Out>[];
    m?.inflight.inc(jobs.length);
    try {
      outcomes = await processor.processBatch!(jobs);
      if (outcomes.length !== jobs.length) throw new Error(`processBatch gave ${outcomes.length} results for ${jobs.length} jobs`);
    } catch (err) {
      m?.inflight.dec(jobs.length);
      log.warn({ jobs: jobs.length, err: errorText(err) }, 'batched processing failed; processing the jobs one by one');
      return loop(jobs, t0);
    }
    m?.inflight.dec(jobs.length);
    const outs = jobs.map((job, i) => {
      const r = outcomes[i]!;
      if (r.status === 'rejected') return failed(job, r.reason, t0);
      succeeded(job, t0);
      return r.value;
    });
    for (let i = 0; i < jobs.length; i++) await pass(outs[i], jobs[i]!);
  };

  const handle = async (batch: Buffer[][]): Promise<void> => {
    const jobs: Job[] = [];
    const start = epochMs();
    for (const frames of batch) {
      const job = take(frames);
      if (!job) continue;
      const meta = job.meta;
      meta.timings[`${options.stage}_wait`] = Math.max(0, start - (meta.handoff ?? meta.accepted));
      if (meta.error) {
        // Failed upstream: nothing to do here but pass it on, at once.
        m?.jobs.inc({ outcome: 'passed' });
        await pass(toFailure(job), job);
        continue;
      }
      try {
        // Parts left in shared memory by the stage before (same host): read them here, once.
        if (processor.readsParts !== false) loadParts(job);
      } catch (err) {
        await pass(failed(job, err, performance.now()), job);
        continue;
      }
      m?.queueWait.observe(waitSeconds(meta));
      jobs.push(job);
    }
    if (jobs.length === 0) return;
    if (batching.maxSize > 1) m?.batch.observe({ model: 'jobs' }, jobs.length);
    const t0 = performance.now();
    if (jobs.length > 1 && processor.processBatch) await together(jobs, t0);
    else await loop(jobs, t0);
  };

  const messages = 'jobs' in input ? input.jobs(options.signal) : until(input, options.signal);
  const it = messages[Symbol.asyncIterator]();
  // A receive that lost the race against a batch's deadline: it starts the next batch.
  let ahead: Promise<IteratorResult<Buffer[]>> | undefined;
  for (;;) {
    const first = await (ahead ?? it.next());
    ahead = undefined;
    if (first.done) break;
    const batch = [first.value];
    if (batching.maxSize > 1) {
      const deadline = performance.now() + batching.maxWaitMs;
      while (batch.length < batching.maxSize) {
        const next = it.next();
        const got = await byDeadline(next, deadline);
        if (got === undefined || got.done) {
          ahead = next;
          break;
        }
        batch.push(got.value);
      }
    }
    stats.received += batch.length;
    m?.received.inc(batch.length);
    active++;
    handle(batch).then(ended, endedBadly);
    // Hold intake while `concurrency` batches are in flight: the backlog then stays in the
    // upstream socket queues (bounded by their HWM) instead of growing in this process, and is
    // what the next batch is gathered from.
    while (active >= options.concurrency) await oneEnds();
  }
  while (active > 0) await oneEnds();
  return stats;
}

/**
 * `next` if it settles by `deadline` (performance.now() ms), else undefined. A deadline already
 * passed still lets a message that is already waiting through: a zero-length timer (setImmediate)
 * runs after the promise callbacks of a receive that could complete at once.
 */
function byDeadline<T>(next: Promise<T>, deadline: number): Promise<T | undefined> {
  const ms = deadline - performance.now();
  return new Promise<T | undefined>((resolve, reject) => {
    let cancel: () => void;
    if (ms >= 1) {
      const timer = setTimeout(() => resolve(undefined), ms);
      cancel = () => clearTimeout(timer);
    } else {
      const immediate = setImmediate(() => resolve(undefined));
      cancel = () => clearImmediate(immediate);
    }
    next.then(
      (v) => {
        cancel();
        resolve(v);
      },
      (err: unknown) => {
        cancel();
        reject(err as Error);
      },
    );
  });
}

/** detect/classify: a job is passed on as it is, error and all. */
export function passJob(job: Job): Job {
  return job;
}

/** A thrown value's message, whatever was thrown (null, strings, objects without a prototype). */
function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return String(err);
  } catch {
    return Object.prototype.toString.call(err);
  }
}
