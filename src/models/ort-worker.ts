// One ONNX Runtime worker thread of a SessionPool (src/models/ort-pool.ts): loads the pool's
// models, then runs one inference at a time for the thread that owns it.
import { parentPort, workerData } from 'node:worker_threads';
import { ctcRows } from './ctc.js';
import { createSession, outputByName, ort } from './ort.js';
import type { PoolTask, PoolTensor, PoolWorkerData, PoolReply } from './ort-pool.js';

const data = workerData as PoolWorkerData;
const port = parentPort!;

try {
  const sessions = new Map<string, ort.InferenceSession>();
  for (const [name, file] of Object.entries(data.files)) sessions.set(name, await createSession(file, { threads: data.threads }));
  // The call in progress: close() waits for it (onnxruntime-node defers run() by a setImmediate).
  let current: Promise<void> = Promise.resolve();
  port.on('message', (task: PoolTask | { close: true }) => {
    if ('close' in task) void current.then(() => close(sessions));
    else current = run(sessions, task);
  });
  port.postMessage({ ready: true } satisfies PoolReply);
} catch (err) {
  port.postMessage({ failed: (err as Error).message } satisfies PoolReply);
}

/**
 * Ends this thread by letting it run out of work: Worker.terminate() while onnxruntime-node is
 * inside a call aborts the whole process (a C++ exception thrown during termination).
 */
async function close(sessions: Map<string, ort.InferenceSession>): Promise<void> {
  await Promise.allSettled([...sessions.values()].map((s) => s.release()));
  port.close();
}

async function run(sessions: Map<string, ort.InferenceSession>, task: PoolTask): Promise<void> {
  try {
    const session = sessions.get(task.model);
    if (!session) throw new Error(`pool has no model ${task.model}`);
    const t0 = performance.now();
    const out = await session.run({ [task.inputName ?? session.inputNames[0]!]: new ort.Tensor('float32', task.input, task.dims) });
    if (task.post === 'all') {
      const ms = performance.now() - t0;
      // Copies of our own: a tensor's memory belongs to ONNX Runtime and cannot be transferred.
      const outputs: Record<string, PoolTensor> = {};
      const buffers: ArrayBuffer[] = [];
      try {
        for (const [name, t] of Object.entries(out)) {
          if (!ArrayBuffer.isView(t.data)) throw new Error(`output ${name} is not numeric (${t.type})`);
          const data = (t.data as Float32Array).slice();
          outputs[name] = { type: t.type, data, dims: [...t.dims] };
          buffers.push(data.buffer);
        }
      } finally {
        for (const t of Object.values(out)) t.dispose();
      }
      port.postMessage({ id: task.id, outputs, ms } satisfies PoolReply, buffers);
      return;
    }
    const tensor = outputByName(out, task.output);
    const values = tensor.data as Float32Array;
    if (task.post === 'ctc') {
      // Greedy CTC here: the rec output is batch × steps × 6,625 classes (megabytes), its tokens are bytes.
      port.postMessage({ id: task.id, tokens: ctcRows(values, tensor.dims), dims: [...tensor.dims] } satisfies PoolReply);
    } else {
      // A copy of our own: the tensor's memory belongs to ONNX Runtime and cannot be transferred.
      const copy = values.slice();
      port.postMessage({ id: task.id, values: copy, dims: [...tensor.dims] } satisfies PoolReply, [copy.buffer]);
    }
  } catch (err) {
    port.postMessage({ id: task.id, error: (err as Error).message } satisfies PoolReply);
  }
}
