import type { Job } from '../protocol/job.js';

/**
 * What every stage runs: one job in, one job out. A stage file wires a processor between its
 * sockets; a new model family or stage is one new processor. Throwing a FramepipeError fails
 * that one request with the error's code (the job travels on to the sink, which answers the
 * client); it never stops the stage.
 */
export interface StageProcessor<In = Job, Out = Job> {
  /** Short name for logs and timings, e.g. `ocr-det`. */
  readonly name: string;
  /**
   * False when process() never looks at a job's image or pixels (the noop profile): parts in
   * shared memory then pass on unread. Default true: they are read before process().
   */
  readonly readsParts?: boolean;
  /** Jobs it can usefully work on at once (`concurrency: auto` follows it); absent = 1. */
  readonly parallelism?: number;
  /**
   * Why the processor cannot work any more (its inference workers all died), or undefined while
   * it can: the stage's /readyz reports it, so an orchestrator restarts the process.
   */
  health?(): string | undefined;
  /** Facts for the stage's ready line: model file, input size, threads. */
  describe(): Record<string, unknown>;
  process(input: In): Promise<Out>;
  /**
   * Several jobs at once, for a stage with `batch.max_size` > 1: the jobs share inference calls
   * (crops or text lines of several requests in one model run). One outcome per input, in input
   * order; a job that fails on its own (a bad image) is a rejected entry and fails only itself.
   * Throwing fails nobody: the stage then runs process() on each job instead, so each gets its
   * own outcome. An implementation must therefore leave the jobs untouched until its inference
   * has succeeded. Absent (a model with a fixed batch of 1): the stage loops over process().
   */
  processBatch?(inputs: In[]): Promise<PromiseSettledResult<Out>[]>;
  /** Releases models and buffers. Called once, after the last process() has settled. */
  close(): Promise<void>;
}
