import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { JobMeta } from '../protocol/job.js';

/**
 * The Prometheus metrics of one framepipe process. Created once per process by `initMeters`
 * (when `metrics.port` is not 0); until then `meters()` is undefined and every hook in the hot
 * path is one `undefined` check. Every series carries the process's `stage` as a default label.
 */
export interface Meters {
  registry: Registry;
  stage: string;
  received: Counter<'stage'>;
  /** Jobs by how they ended here: ok, error (failed in this stage), passed (failed earlier), expired, malformed. */
  jobs: Counter<'outcome' | 'stage'>;
  /** Errors by protocol code: jobs that failed in this stage; ingest: rejections and timeouts. */
  errors: Counter<'code' | 'stage'>;
  processing: Histogram<'stage'>;
  queueWait: Histogram<'stage'>;
  inflight: Gauge<'stage'>;
  /** Per-step times the processors record in job.meta.timings (decode, detect_model, recognize …), observed at the sink. */
  steps: Histogram<'step' | 'stage'>;
  /** Accepted at ingest → reply assembled at the sink. */
  request: Histogram<'stage'>;
  detections: Histogram<'stage'>;
  /** Sink: replies by code (OK or the error code). */
  replies: Counter<'code' | 'stage'>;
  streamFrames: Counter<'stream' | 'stage'>;
  ready: Gauge<'stage'>;
  /** Items per inference call (text lines, crops): how well a model's batch axis is used. */
  batch: Histogram<'model' | 'stage'>;
}

// Seconds, 0.1 ms … 30 s: the plumbing is sub-millisecond, models take tens to hundreds of ms.
const TIME_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

let current: Meters | undefined;

export function meters(): Meters | undefined {
  return current;
}

export function initMeters(stage: string): Meters {
  if (current) return current;
  const registry = new Registry();
  registry.setDefaultLabels({ stage });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  current = {
    registry,
    stage,
    received: new Counter({ name: 'framepipe_jobs_received_total', help: 'Job messages taken from the input', labelNames: ['stage'], registers }),
    jobs: new Counter({ name: 'framepipe_jobs_total', help: 'Jobs by outcome in this stage', labelNames: ['outcome', 'stage'], registers }),
    errors: new Counter({ name: 'framepipe_errors_total', help: 'Errors by protocol code', labelNames: ['code', 'stage'], registers }),
    processing: new Histogram({ name: 'framepipe_processing_seconds', help: "Time in the stage's processor per job", labelNames: ['stage'], buckets: TIME_BUCKETS, registers }),
    queueWait: new Histogram({
      name: 'framepipe_queue_wait_seconds',
      help: 'Time a job spent queued or in transit before this stage took it, since ingest accepted it, minus the processing of earlier stages',
      labelNames: ['stage'],
      buckets: TIME_BUCKETS,
      registers,
    }),
    inflight: new Gauge({ name: 'framepipe_jobs_in_flight', help: 'Jobs being processed now (at most the stage concurrency)', labelNames: ['stage'], registers }),
    steps: new Histogram({ name: 'framepipe_step_seconds', help: 'Per-step times from job timings (model inference: detect_model, classify_model, recognize)', labelNames: ['step', 'stage'], buckets: TIME_BUCKETS, registers }),
    request: new Histogram({ name: 'framepipe_request_seconds', help: 'Accepted at ingest to reply assembled at the sink', labelNames: ['stage'], buckets: TIME_BUCKETS, registers }),
    detections: new Histogram({ name: 'framepipe_detections_per_job', help: 'Detections in each reply', labelNames: ['stage'], buckets: [0, 1, 2, 5, 10, 20, 50, 100, 500], registers }),
    replies: new Counter({ name: 'framepipe_replies_total', help: 'Replies assembled by the sink, by code (OK or the error code)', labelNames: ['code', 'stage'], registers }),
    streamFrames: new Counter({ name: 'framepipe_stream_frames_total', help: 'Frames answered per client stream (the first 64 names; the rest as "other")', labelNames: ['stream', 'stage'], registers }),
    ready: new Gauge({ name: 'framepipe_ready', help: '1 once the process has loaded its model and bound or connected its sockets', labelNames: ['stage'], registers }),
    batch: new Histogram({ name: 'framepipe_batch_size', help: 'Items per inference call (text lines, crops)', labelNames: ['model', 'stage'], buckets: [1, 2, 4, 8, 16, 32, 64], registers }),
  };
  return current;
}

/** Stages that run processors in between (and so have job timings of their own): not steps. */
const STAGE_TIMINGS = new Set(['ingest', 'detect', 'classify', 'sink', 'total']);

/** Queue and transit time so far: age of the job minus what earlier stages spent processing it. */
export function waitSeconds(meta: JobMeta, now = Date.now()): number {
  let busy = 0;
  for (const key of ['ingest', 'detect', 'classify']) busy += meta.timings[key] ?? 0;
  return Math.max(0, now - meta.accepted - busy) / 1000;
}

/** Sink: a finished request's steps, end-to-end time, detections and stream. */
export function observeReply(m: Meters, meta: JobMeta, code: string): void {
  if (code === 'OK') {
    for (const [step, ms] of Object.entries(meta.timings)) if (!STAGE_TIMINGS.has(step) && !step.endsWith('_wait')) m.steps.observe({ step }, ms / 1000);
    m.detections.observe(meta.detections?.length ?? 0);
  }
  m.replies.inc({ code });
  m.request.observe(Math.max(0, Date.now() - meta.accepted) / 1000);
  if (meta.stream !== undefined) m.streamFrames.inc({ stream: streamLabel(meta.stream) });
}

const streamNames = new Set<string>();
function streamLabel(stream: string): string {
  if (streamNames.has(stream)) return stream;
  if (streamNames.size >= 64) return 'other';
  streamNames.add(stream);
  return stream;
}
