import { Worker } from 'node:worker_threads';
import { StartupError } from '../config/errors.js';
import { holdExitWhile } from '../exit-guard.js';
import type { CtcToken } from './ctc.js';

/**
 * ONNX Runtime sessions in worker threads. onnxruntime-node's `run()` is synchronous on the
 * thread that calls it (it only defers the call with setImmediate), so a stage with one session
 * runs one inference at a time however many threads it gives ONNX Runtime, and its event loop
 * stands still meanwhile. For a model of many small calls (OCR recognition: a few lines per
 * call) intra-op threads share out badly — two 1-thread sessions side by side beat one 2-thread
 * session (MANIFEST §5; docs/config.md, "Inference workers"). A pool of N workers, each with its
 * own sessions of the same models, runs N calls at once and leaves the stage's own thread free
 * for cropping and ZeroMQ.
 *
 * Worker.terminate() (and process.exit) while a worker is inside an onnxruntime-node call aborts
 * the whole process, so workers are only ever ended from inside, when idle (close()), and a
 * forced exit waits for the calls in progress (src/exit-guard.ts).
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
  /** The model input to feed; default its first. */
  inputName?: string;
  /** The output to return, by name (unused with `all`). */
  output: string;
  /** `ctc`: greedy CTC tokens per batch row instead of the (large) probabilities; `all`: every output, and the run's own time (not the wait for a worker). */
  post: 'raw' | 'ctc' | 'all';
}

/** One output tensor as it crosses threads: its element type, a copy of its data, its shape. */
export interface PoolTensor {
  type: string;
  data: ArrayBufferView;
  dims: number[];
}

export type PoolReply =
  | { ready: true }
  | { failed: string }
  | { id: number; values: Float32Array; dims: number[] }
  | { id: number; tokens: CtcToken[][]; dims: number[] }
  | { id: number; outputs: Record<string, PoolTensor>; ms: number }
  | { id: number; error: string };

export type PoolResult = { values: Float32Array; dims: number[] } | { tokens: CtcToken[][]; dims: number[] } | { outputs: Record<string, PoolTensor>; ms: number };

interface Pending {
  task: PoolTask;
  resolve: (r: PoolResult) => void;
  reject: (err: Error) => void;
}

/** One worker and what it is doing. */
interface Slot {
  worker: Worker;
  /** Resolves when this worker has exited. */
  exited: Promise<void>;
  busy?: Pending;
  /** Its worker failed and a new one is starting: nothing is sent to it meanwhile. */
  starting?: boolean;
  /** Its worker failed and no new one could start. */
  dead?: boolean;
  /** The listeners watch() added, to take off when the worker is replaced. */
  unwatch?: () => void;
}

export class SessionPool {
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;
  private readonly releaseGuard: () => void;

  private constructor(
    private readonly slots: Slot[],
    private readonly data: PoolWorkerData,
  ) {
    for (const slot of slots) this.watch(slot);
    this.releaseGuard = holdExitWhile(() => this.slots.some((s) => s.busy !== undefined));
  }

  /** Starts `workers` workers, each loading every model; a failure to start is a StartupError. */
  static async create(files: Record<string, string>, options: { workers: number; threads: number }): Promise<SessionPool> {
    const data: PoolWorkerData = { files, threads: options.threads };
    const started = await Promise.allSettled(Array.from({ length: options.workers }, () => spawn(data)));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      // The ones that did start must not outlive this failure.
      await Promise.all(started.flatMap((s) => (s.status === 'fulfilled' ? [endSlot(s.value)] : [])));
      throw failed.reason;
    }
    return new SessionPool(
      started.map((s) => (s as PromiseFulfilledResult<Slot>).value),
      data,
    );
  }

  /**
   * Every worker died and none could be started again (e.g. its model file went away): each call
   * now fails at once, so the stage should say it is not ready.
   */
  get dead(): boolean {
    return this.slots.every((s) => s.dead);
  }

  /** The slots' workers (tests). */
  get workerThreads(): readonly Worker[] {
    return this.slots.map((s) => s.worker);
  }

  /**
   * One inference on the first free worker (queued while all are busy). `input`'s memory is
   * moved to the worker (its buffer is detached here) when the array covers all of it, else copied.
   */
  run(model: string, input: Float32Array, dims: number[], output: string, post: 'raw' | 'ctc' | 'all' = 'raw', inputName?: string): Promise<PoolResult> {
    if (this.closed) return Promise.reject(new Error('session pool closed'));
    if (this.slots.every((s) => s.dead)) return Promise.reject(new Error('every ONNX Runtime worker died'));
    const own = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength && input.buffer instanceof ArrayBuffer ? input : input.slice();
    return new Promise((resolve, reject) => {
      this.queue.push({ task: { id: this.nextId++, model, input: own, dims, output, post, ...(inputName === undefined ? {} : { inputName }) }, resolve, reject });
      this.dispatch();
    });
  }

  /** Lets the calls in progress finish, then ends each worker from inside. Queued calls are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('session pool closed'));
    while (this.slots.some((s) => (s.busy && !s.dead) || s.starting)) await new Promise((r) => setTimeout(r, 5));
    await Promise.all(this.slots.filter((s) => !s.dead).map(endSlot));
    this.releaseGuard();
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.busy || slot.dead || slot.starting) continue;
      const next = this.queue.shift()!;
      slot.busy = next;
      try {
        slot.worker.postMessage(next.task, [next.task.input.buffer as ArrayBuffer]);
      } catch (err) {
        slot.busy = undefined;
        next.reject(err as Error);
      }
    }
  }

  private watch(slot: Slot): void {
    const onMessage = (reply: PoolReply) => {
      const pending = slot.busy;
      if (!pending || !('id' in reply) || reply.id !== pending.task.id) return;
      slot.busy = undefined;
      if ('error' in reply) pending.reject(new Error(reply.error));
      else if ('outputs' in reply) pending.resolve({ outputs: reply.outputs, ms: reply.ms });
      else pending.resolve('tokens' in reply ? { tokens: reply.tokens, dims: reply.dims } : { values: reply.values, dims: reply.dims });
      this.dispatch();
    };
    // A worker that fails fails only the call it had; a new one takes its place.
    const onError = (err: Error) => this.replace(slot, err);
    const onExit = (code: number) => this.replace(slot, new Error(`ONNX Runtime worker exited with code ${code}`));
    slot.worker.on('message', onMessage);
    slot.worker.once('error', onError);
    slot.worker.once('exit', onExit);
    slot.unwatch = () => {
      slot.worker.off('message', onMessage);
      slot.worker.off('error', onError);
      slot.worker.off('exit', onExit);
      slot.unwatch = undefined;
    };
  }

  private replace(slot: Slot, err: Error): void {
    if (!slot.unwatch) return;
    slot.unwatch();
    slot.busy?.reject(err);
    slot.busy = undefined;
    // If it still runs (an error it reported), it ends once its call is done.
    void endSlot(slot);
    if (this.closed) {
      slot.dead = true;
      return;
    }
    slot.starting = true;
    spawn(this.data).then(
      (fresh) => {
        slot.starting = false;
        slot.worker = fresh.worker;
        slot.exited = fresh.exited;
        if (this.closed) return;
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
}

function spawn(data: PoolWorkerData): Promise<Slot> {
  const worker = new Worker(new URL('./ort-worker-boot.mjs', import.meta.url), { workerData: data });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => reject(new StartupError('MODEL_MISMATCH', `ONNX Runtime worker could not start: ${err.message}`, { cause: err }));
    worker.once('error', fail);
    worker.once('message', (reply: PoolReply) => {
      worker.off('error', fail);
      if ('failed' in reply) {
        void endSlot({ worker, exited });
        fail(new Error(reply.failed));
      } else resolve({ worker, exited });
    });
  });
}

/**
 * Asks a worker to finish (it waits for its call in progress, releases its sessions and lets its
 * thread run out) and resolves when it has, or after 5 s, leaving it unref'd.
 */
async function endSlot(slot: Pick<Slot, 'worker' | 'exited'>): Promise<void> {
  try {
    slot.worker.postMessage({ close: true });
  } catch {
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      slot.worker.unref();
      resolve();
    }, 5000);
  });
  await Promise.race([slot.exited, late]);
  clearTimeout(timer);
}
