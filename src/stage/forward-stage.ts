import { encodeOrFail, type Job } from '../protocol/job.js';
import { stageCurve } from '../security/keys.js';
import { bindOrFail, connectHop, pullSocket, pushSocket, type HopOptions } from '../transport/sockets.js';
import { PartStore, sharedHop } from '../transport/shared-parts.js';
import { WorkerLink } from '../transport/worker-link.js';
import { SocketWriter } from '../transport/writer.js';
import { metricsServer } from '../metrics/process-metrics.js';
import type { StageProcessor } from './processor.js';
import { passJob, runPipe, type BatchOptions } from './run-pipe.js';
import type { StageContext, StageName } from './setup.js';

export interface ForwardStageOptions {
  stage: StageName;
  processor: StageProcessor;
  /** Endpoint this stage binds and pulls jobs from. */
  from: string;
  /** Endpoint of the next stage, pushed to. */
  to: string;
  /** Jobs at once; `auto`: the processor's parallelism. */
  concurrency: number | 'auto';
  threads: number;
}

export function hopOptions(ctx: StageContext): HopOptions {
  return { hwm: ctx.config.transport.hwm, lingerMs: ctx.config.transport.linger_ms, curve: stageCurve(ctx.config.security) };
}

/** Broker mode: this replica's link to the broker's rendezvous point for `stage`. */
export function workerLink(ctx: StageContext, stage: 'detect' | 'classify' | 'sink', concurrency: number): WorkerLink {
  const { broker } = ctx.config;
  const link = new WorkerLink(
    { ...hopOptions(ctx), stage, endpoint: broker[stage], concurrency, heartbeatMs: broker.heartbeat_ms, liveness: broker.liveness },
    ctx.log,
  );
  // Not ready while cut off from the broker: an orchestrator should not count this replica.
  metricsServer()?.addCheck(() => (link.brokerSilent ? `broker ${broker[stage]} silent; reconnecting` : undefined));
  return link;
}

/**
 * Where this stage puts large parts for the next hop: shared memory when that hop stays on this
 * host (`transport.shared_memory`), else nowhere (frames).
 */
function partStore(ctx: StageContext, stage: 'detect' | 'classify', next: string): PartStore | undefined {
  const t = ctx.config.transport;
  return sharedHop(t, next) ? new PartStore(t.shared_memory_min_bytes, stage) : undefined;
}

function forwardStage(stage: StageName): 'detect' | 'classify' {
  if (stage !== 'detect' && stage !== 'classify') throw new Error(`${stage} is not a forward stage`);
  return stage;
}

/** The stage's cross-request batching (`<stage>.batch`). */
function batchOptions(ctx: StageContext, stage: StageName): BatchOptions {
  const section = stage === 'detect' || stage === 'classify' ? ctx.config[stage].batch : undefined;
  return { maxSize: section?.max_size ?? 1, maxWaitMs: section?.max_wait_ms ?? 0 };
}

/** A middle stage (detect, classify): take a job, process it, pass it on. */
export async function runForwardStage(ctx: StageContext, given: ForwardStageOptions): Promise<void> {
  const options = { ...given, concurrency: given.concurrency === 'auto' ? (given.processor.parallelism ?? 1) : given.concurrency };
  // A processor that can no longer work (its inference workers all gone) makes the stage not ready.
  const { processor: p } = given;
  if (p.health) metricsServer()?.addCheck(() => p.health!());
  if (ctx.config.transport.mode === 'broker') return runBrokerStage(ctx, options);
  const { stage, processor } = options;
  const batch = batchOptions(ctx, stage);
  const hop = hopOptions(ctx);
  const input = pullSocket(hop);
  const output = pushSocket(hop);
  const writer = new SocketWriter(output, hop.hwm);
  const store = partStore(ctx, forwardStage(stage), options.to);
  ctx.onClose(async () => {
    input.close();
    await writer.drain(hop.lingerMs);
    writer.close();
    output.close();
    await processor.close();
  });
  await bindOrFail(input, options.from, `${stage} input`, hop.curve, ctx.log);
  connectHop(output, options.to, hop.curve);
  // Endpoints last: a processor's own facts (its model's input and output names) must not hide them.
  ctx.ready({
    ...processor.describe(),
    input: options.from,
    output: options.to,
    shared_memory: store !== undefined,
    threads: options.threads,
    concurrency: options.concurrency,
    ...batchFacts(batch, processor),
  });

  const stats = await runPipe<Job>({
    stage,
    input,
    processor,
    emit: (job) => writer.send(encodeOrFail(job, store)),
    onFailure: passJob,
    concurrency: options.concurrency,
    batch,
    log: ctx.log,
    signal: ctx.signal,
  });
  ctx.log.info(stats, `${stage} stopped`);
}

/** Broker mode: jobs come by credit from the broker and go back to it, which passes them on. */
async function runBrokerStage(ctx: StageContext, options: ForwardStageOptions & { concurrency: number }): Promise<void> {
  const { processor } = options;
  const stage = forwardStage(options.stage);
  const batch = batchOptions(ctx, stage);
  // Credit is jobs held at once: enough for `concurrency` full batches, or no batch could fill.
  const link = workerLink(ctx, stage, options.concurrency * batch.maxSize);
  const store = partStore(ctx, stage, ctx.config.broker[stage]);
  ctx.onClose(async () => {
    await link.close();
    await processor.close();
  });
  link.start();
  ctx.ready({
    ...processor.describe(),
    broker: ctx.config.broker[stage],
    replica: link.name,
    shared_memory: store !== undefined,
    threads: options.threads,
    concurrency: options.concurrency,
    ...batchFacts(batch, processor),
  });

  const stats = await runPipe<Job>({
    stage,
    input: link,
    processor,
    emit: (job) => link.finish(encodeOrFail(job, store)),
    onFailure: passJob,
    dropped: (frames) => link.release(frames[0]),
    concurrency: options.concurrency,
    batch,
    log: ctx.log,
    signal: ctx.signal,
  });
  ctx.log.info(stats, `${stage} stopped`);
}

/** The ready line's batching facts: only when batching is on, and whether the model really batches. */
function batchFacts(batch: BatchOptions, processor: StageProcessor): Record<string, unknown> {
  if (batch.maxSize <= 1) return {};
  return { batch_max_size: batch.maxSize, batch_max_wait_ms: batch.maxWaitMs, batched_inference: processor.processBatch !== undefined };
}
