import { encodeJob, type Job } from '../protocol/job.js';
import { bindOrFail, pullSocket, pushSocket, type HopOptions } from '../transport/sockets.js';
import { SocketWriter } from '../transport/writer.js';
import type { StageProcessor } from './processor.js';
import { passJob, runPipe } from './run-pipe.js';
import type { StageContext, StageName } from './setup.js';

export interface ForwardStageOptions {
  stage: StageName;
  processor: StageProcessor;
  /** Endpoint this stage binds and pulls jobs from. */
  from: string;
  /** Endpoint of the next stage, pushed to. */
  to: string;
  concurrency: number;
  threads: number;
}

export function hopOptions(ctx: StageContext): HopOptions {
  return { hwm: ctx.config.transport.hwm, lingerMs: ctx.config.transport.linger_ms };
}

/** A middle stage (detect, classify): pull a job, process it, push it on. */
export async function runForwardStage(ctx: StageContext, options: ForwardStageOptions): Promise<void> {
  const { stage, processor } = options;
  const hop = hopOptions(ctx);
  const input = pullSocket(hop);
  const output = pushSocket(hop);
  const writer = new SocketWriter(output, hop.hwm);
  ctx.onClose(async () => {
    input.close();
    await writer.drain(hop.lingerMs);
    writer.close();
    output.close();
    await processor.close();
  });
  await bindOrFail(input, options.from, `${stage} input`);
  output.connect(options.to);
  // Endpoints last: a processor's own facts (its model's input and output names) must not hide them.
  ctx.ready({ ...processor.describe(), input: options.from, output: options.to, threads: options.threads, concurrency: options.concurrency });

  const stats = await runPipe<Job>({
    stage,
    input,
    processor,
    emit: (job) => writer.send(encodeJob(job)),
    onFailure: passJob,
    concurrency: options.concurrency,
    log: ctx.log,
    signal: ctx.signal,
  });
  ctx.log.info(stats, `${stage} stopped`);
}
