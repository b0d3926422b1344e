import type * as zmq from 'zeromq';
import { decodeJob, epochMs, type Job } from '../protocol/job.js';
import { ErrorCode, toWireError } from '../protocol/errors.js';
import type { Logger } from '../log.js';
import { meters, waitSeconds } from '../metrics/meters.js';
import { until } from '../transport/receive.js';
import type { StageProcessor } from './processor.js';

/** Where jobs come from: a PULL socket (direct mode) or the broker's credit-based dispatch. */
export type JobInput = zmq.Readable | { jobs(signal: AbortSignal): AsyncIterable<Buffer[]> };

export interface PipeOptions<Out> {
  stage: string;
  input: JobInput;
  processor: StageProcessor<Job, Out>;
  /** Where a finished job goes; awaited, so a slow consumer slows the intake (back-pressure). */
  emit: (out: Out) => Promise<void>;
  /** Turns a failed or expired job into something to emit (detect/classify: the job itself, carrying its error). */
  onFailure: (job: Job) => Out;
  /** Jobs processed at once. */
  concurrency: number;
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
}

/**
 * The loop every stage runs: take a job, hand it to the processor, pass the result on. A
 * malformed message or a throwing processor costs one job, never the stage: failures travel
 * on as the job's `error` so the sink can answer the client with it.
 */
export async function runPipe<Out>(options: PipeOptions<Out>): Promise<PipeStats> {
  const { input, processor, emit, onFailure, log } = options;
  const stats: PipeStats = { received: 0, done: 0, failed: 0, expired: 0, malformed: 0 };
  const inflight = new Set<Promise<void>>();
  // Undefined when metrics are off: then each hook below is one check.
  const m = meters();

  const handle = async (frames: Buffer[]): Promise<void> => {
    let job: Job;
    try {
      job = decodeJob(frames);
    } catch (err) {
      // Without a readable header there is nobody to answer; the ingest's deadline will.
      stats.malformed++;
      m?.jobs.inc({ outcome: 'malformed' });
      log.warn({ err: (err as Error).message }, 'dropped malformed job');
      options.dropped?.(frames);
      return;
    }
    const meta = job.meta;
    if (!meta.error && Date.now() > meta.deadline) {
      // Ingest has already answered TIMEOUT; doing the work would only delay live requests.
      stats.expired++;
      m?.jobs.inc({ outcome: 'expired' });
      log.debug({ job: meta.job, id: meta.id }, 'dropped expired job');
      options.dropped?.(frames);
      return;
    }
    meta.timings[`${options.stage}_wait`] = Math.max(0, epochMs() - (meta.handoff ?? meta.accepted));
    let out: Out;
    if (meta.error) {
      m?.jobs.inc({ outcome: 'passed' });
      out = onFailure(job);
    } else {
      const t0 = performance.now();
      if (m) {
        m.queueWait.observe(waitSeconds(meta));
        m.inflight.inc();
      }
      try {
        out = await processor.process(job);
        stats.done++;
        m?.jobs.inc({ outcome: 'ok' });
      } catch (err) {
        stats.failed++;
        meta.error = toWireError(err);
        if (m) {
          m.jobs.inc({ outcome: 'error' });
          m.errors.inc({ code: meta.error.code });
        }
        const level = meta.error.code === ErrorCode.INTERNAL ? 'error' : 'debug';
        log[level]({ job: meta.job, id: meta.id, code: meta.error.code, err: (err as Error).message }, 'job failed');
        delete job.image;
        delete job.pixels;
        delete meta.pixels;
        out = onFailure(job);
      }
      meta.timings[options.stage] = performance.now() - t0;
      if (m) {
        m.inflight.dec();
        m.processing.observe(meta.timings[options.stage]! / 1000);
      }
    }
    meta.handoff = epochMs();
    try {
      await emit(out);
    } catch (err) {
      log.error({ job: meta.job, id: meta.id, err: (err as Error).message }, 'could not pass job on');
    }
  };

  const messages = 'jobs' in input ? input.jobs(options.signal) : until(input, options.signal);
  for await (const frames of messages) {
    stats.received++;
    m?.received.inc();
    const p = handle(frames).finally(() => inflight.delete(p));
    inflight.add(p);
    // Hold intake while `concurrency` jobs are in flight: the backlog then stays in the
    // upstream socket queues (bounded by their HWM) instead of growing in this process.
    while (inflight.size >= options.concurrency) await Promise.race(inflight);
  }
  await Promise.allSettled(inflight);
  return stats;
}

/** detect/classify: a job is passed on as it is, error and all. */
export function passJob(job: Job): Job {
  return job;
}

