import * as ort from 'onnxruntime-node';
import { StartupError } from '../config/errors.js';

export interface SessionOptions {
  /** ONNX Runtime intra-op threads (the stage's `threads` setting). */
  threads: number;
}

/**
 * Every model is loaded through here, so all sessions share one policy: quiet logs (old exports
 * print hundreds of harmless warnings), a fixed thread count per stage (two 1-thread processes
 * beat one 2-thread process on 2 cores), and no spinning (idle stages must not burn the core the
 * next stage needs).
 */
export async function createSession(file: string, options: SessionOptions): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(file, {
      logSeverityLevel: 3,
      intraOpNumThreads: options.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  } catch (err) {
    throw new StartupError('MODEL_MISMATCH', `cannot load model ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Output tensor by name, with a clear error when the model does not have it. */
export function outputByName(outputs: ort.InferenceSession.ReturnType, name: string): ort.Tensor {
  const t = outputs[name];
  if (!t) throw new Error(`model has no output '${name}' (has: ${Object.keys(outputs).join(', ')})`);
  return t;
}

export { ort };
