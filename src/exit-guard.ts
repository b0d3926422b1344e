/**
 * Checks a forced exit waits on. process.exit() ends worker threads the way Worker.terminate()
 * does, and onnxruntime-node aborts the whole process (SIGABRT) when a thread is ended inside one
 * of its calls; a stage's "cleanup is stuck, exit anyway" timer therefore waits until no
 * registered check says a native call is running (they finish in bounded time).
 */
const guards = new Set<() => boolean>();

/** Registers `busy`; returns the function that removes it. */
export function holdExitWhile(busy: () => boolean): () => void {
  guards.add(busy);
  return () => guards.delete(busy);
}

/** process.exit(code) as soon as no guard is busy (checked every 20 ms). */
export function exitWhenIdle(code: number): void {
  if ([...guards].some((busy) => busy())) {
    setTimeout(() => exitWhenIdle(code), 20);
    return;
  }
  process.exit(code);
}
