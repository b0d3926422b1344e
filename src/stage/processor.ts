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
  /** Facts for the stage's ready line: model file, input size, threads. */
  describe(): Record<string, unknown>;
  process(input: In): Promise<Out>;
  /** Releases models and buffers. Called once, after the last process() has settled. */
  close(): Promise<void>;
}
