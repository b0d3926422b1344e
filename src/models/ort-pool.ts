import { Worker } from 'node:worker_threads';
import { StartupError } from '../config/errors.js';
import type { CtcToken } from './ctc.js';

/**
 * ONNX Runtime sessions in worker threads. onnxruntime-node's `run()` is synchronous on the
 * thread that calls it (it only defers the call with setImmediate), so a stage with one session
 * runs one inference at a time however many threads it gives ONNX Runtime, and its event loop
 * stands still meanwhile. For a model of many small calls (OCR recognition: a few lines per
 * call) intra-op threads share out badly — two 1-thread sessions side by side beat one 2-thread
 * session (MANIFEST §5; `npm run bench -- ocr`). A pool of N workers, each with its own sessions
 * of the same models, runs N calls at once and leaves the stage's own thread free for cropping
 * and ZeroMQ.
 */
export interface PoolWorkerData {
  /** Model name → file. */
  files: Record<string, string>;
  /** Intra-op threads of each worker's sessions. */
  threads: number;
}

export interface PoolTask {
  id: number;
  model: string;
  input: Float32Array;
  dims: number[];
  /** The output to return, by name. */
  output: string;
  /** `ctc`: greedy CTC tokens per batch row instead of the (large) probabilities. */
  post: 'raw' | 'ctc';
}

export type PoolReply =
  | { ready: true }
  | { failed: string }
  | { id: number; values: Float32Array; dims: number[] }
  | { id: number; tokens: CtcToken[][]; dims: number[] }
  | { id: number; error: string };

export type PoolResult = { values: Float32Array; dims: number[] } | { tokens: CtcToken[][]; dims: number[] };

interface Pending {
  task: PoolTask;
  resolve: (r: PoolResult) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  busy?: Pending;
  /** Its worker died and no new one could start. */
  dead?: boolean;
  /** Its worker failed and a new one is starting: nothing is sent to it meanwhile. */
  starting?: boolean;
}

export class SessionPool {
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;

  private constructor(
    private readonly slots: Slot[],
    private readonly data: PoolWorkerData,
  ) {
    for (const slot of slots) this.watch(slot);
  }

  static async create(files: Record<string, string>, options: { workers: number; threads: number }): Promise<SessionPool> {
    const data: PoolWorkerData = { files, threads: options.threads };
    const workers = await Promise.all(Array.from({ length: options.workers }, () => SessionPool.spawn(data)));
    return new SessionPool(
      workers.map((worker) => ({ worker })),
      data,
    );
  }

  get size(): number {
    return this.slots.length;
  }

  /** One inference on the first free worker (queued while all are busy). */
  run(model: string, input: Float32Array, dims: number[], output: string, post: 'raw' | 'ctc' = 'raw'): Promise<PoolResult> {
    if (this.closed) return Promise.reject(new Error('session pool closed'));
    if (this.slots.every((s) => s.dead)) return Promise.reject(new Error('every ONNX Runtime worker died'));
    return new Promise((resolve, reject) => {
      this.queue.push({ task: { id: this.nextId++, model, input, dims, output, post }, resolve, reject });
      this.dispatch();
    });
  }

  /**
   * Lets the calls in progress finish, then ends each worker from inside: Worker.terminate()
   * during an onnxruntime-node call aborts the whole process, so it is never used.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('session pool closed'));
    while (this.slots.some((s) => s.busy && !s.dead)) await new Promise((r) => setTimeout(r, 5));
    await Promise.all(this.slots.filter((s) => !s.dead).map((s) => ended(s.worker)));
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.busy || slot.dead || slot.starting) continue;
      const next = this.queue.shift()!;
      slot.busy = next;
      slot.worker.postMessage(next.task, [next.task.input.buffer as ArrayBuffer]);
    }
  }

  private watch(slot: Slot): void {
    slot.worker.on('message', (reply: PoolReply) => {
      const pending = slot.busy;
      if (!pending || !('id' in reply) || reply.id !== pending.task.id) return;
      slot.busy = undefined;
      if ('error' in reply) pending.reject(new Error(reply.error));
      else pending.resolve('tokens' in reply ? { tokens: reply.tokens, dims: reply.dims } : { values: reply.values, dims: reply.dims });
      this.dispatch();
    });
    // A worker that dies fails only the call it had; a new one takes its place.
    slot.worker.once('error', (err) => this.replace(slot, err));
    slot.worker.once('exit', (code) => {
      if (!this.closed) this.replace(slot, new Error(`ONNX Runtime worker exited with code ${code}`));
    });
  }

  private replace(slot: Slot, err: Error): void {
    if (this.closed || slot.worker.listenerCount('message') === 0) return;
    slot.worker.removeAllListeners();
    // If it still runs (an error it reported), it ends once its call is done; it never holds the process open.
    void ended(slot.worker);
    slot.busy?.reject(err);
    slot.busy = undefined;
    slot.starting = true;
    SessionPool.spawn(this.data).then(
      (worker) => {
        slot.starting = false;
        if (this.closed) return void ended(worker);
        slot.worker = worker;
        this.watch(slot);
        this.dispatch();
      },
      (e: unknown) => {
        slot.starting = false;
        slot.dead = true;
        if (this.slots.every((s) => s.dead)) for (const p of this.queue.splice(0)) p.reject(e as Error);
      },
    );
  }

  /** The slots' workers (tests). */
  get workerThreads(): readonly Worker[] {
    return this.slots.map((s) => s.worker);
  }

  private static spawn(data: PoolWorkerData): Promise<Worker> {
    const worker = new Worker(new URL('./ort-worker-boot.mjs', import.meta.url), { workerData: data });
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => reject(new StartupError('MODEL_MISMATCH', `ONNX Runtime worker could not start: ${err.message}`, { cause: err }));
      worker.once('error', fail);
      worker.once('message', (reply: PoolReply) => {
        worker.off('error', fail);
        if ('failed' in reply) {
          void worker.terminate();
          fail(new Error(reply.failed));
        } else resolve(worker);
      });
    });
  }
}

/** Asks a worker to finish and resolves when it has (or after 5 s, leaving it unref'd). */
function ended(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      worker.unref();
      resolve();
    }, 5000);
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      worker.postMessage({ close: true });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}
