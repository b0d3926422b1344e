import { spawnStage, waitReady, type LaunchOptions, type Pipeline, type StageProcess } from './launcher.js';

export interface SuperviseOptions {
  /** First restart delay, ms; doubles with every restart of the same process up to `maxDelayMs`. Default 500. */
  minDelayMs?: number;
  /** Longest restart delay, ms. Default 10 000. */
  maxDelayMs?: number;
  /** A process that stayed up this long, ms, starts again from `minDelayMs`. Default 30 000. */
  stableMs?: number;
  /** Restarts in a row that fail to reach ready before the supervisor gives up. Default 5. */
  maxStartFailures?: number;
  readyTimeoutMs?: number;
  /** One line per event (exit, restart, give-up). */
  log?: (line: string) => void;
}

export interface Supervisor {
  /** Resolves with the reason when a process cannot be started again: the caller stops everything. */
  readonly gaveUp: Promise<string>;
  /** Restarts that reached ready. */
  readonly restarts: number;
  /** Called after every successful restart with the new process. */
  onRestart?: (proc: StageProcess) => void;
  /** Stops restarting (call before stopping the pipeline). */
  stop(): void;
}

const describeExit = (code: number | null, signal: string | null) => (signal ? `killed by ${signal}` : `exit code ${code}`);

/**
 * Keeps a launched pipeline's processes running: a process that exits or is killed is started
 * again after an exponential back-off (0.5 s doubling to 10 s, from 0.5 s again once it stayed
 * up 30 s). A process that fails to START again (bad config, port taken, model missing) is
 * retried `maxStartFailures` times, then the supervisor gives up with the reason. The new
 * process replaces the old one in `pipeline.procs`, so `pipeline.stop()` still stops them all.
 */
export function supervise(pipeline: Pipeline, launch: LaunchOptions, options: SuperviseOptions = {}): Supervisor {
  const minDelay = options.minDelayMs ?? 500;
  const maxDelay = options.maxDelayMs ?? 10_000;
  const stableMs = options.stableMs ?? 30_000;
  const maxFailures = options.maxStartFailures ?? 5;
  const log = options.log ?? (() => {});
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  let giveUp!: (reason: string) => void;
  const gaveUp = new Promise<string>((resolve) => (giveUp = resolve));

  const self: Supervisor = {
    gaveUp,
    restarts: 0,
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
    },
  };

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  /** One slot of the pipeline (a stage or one replica of it), restarted in place. */
  const watch = (proc: StageProcess, slot: { delay: number; failures: number }) => {
    const startedAt = Date.now();
    proc.child.once('exit', (code, signal) => {
      if (stopped) return;
      const upMs = Date.now() - startedAt;
      if (upMs >= stableMs) slot.delay = minDelay;
      log(`${proc.stage} (pid ${proc.child.pid}) ${describeExit(code, signal)} after ${(upMs / 1000).toFixed(1)} s; restarting in ${(slot.delay / 1000).toFixed(1)} s`);
      restart(proc, slot);
    });
  };

  const restart = (old: StageProcess, slot: { delay: number; failures: number }) => {
    const delay = slot.delay;
    slot.delay = Math.min(maxDelay, slot.delay * 2);
    later(delay, () => {
      if (stopped) return;
      const next = spawnStage(old.stage, launch);
      const i = pipeline.procs.indexOf(old);
      if (i >= 0) pipeline.procs[i] = next;
      else pipeline.procs.push(next);
      waitReady(next, options.readyTimeoutMs ?? launch.readyTimeoutMs ?? 60_000).then(
        () => {
          if (stopped) return;
          slot.failures = 0;
          (self as { restarts: number }).restarts++;
          log(`${next.stage} restarted (pid ${next.child.pid})`);
          watch(next, slot);
          self.onRestart?.(next);
        },
        (err: Error) => {
          if (stopped) return;
          if (next.child.exitCode === null && next.child.signalCode === null) next.child.kill('SIGKILL');
          slot.failures++;
          const why = err.message.split('\n')[0];
          if (slot.failures >= maxFailures) {
            stopped = true;
            giveUp(`${old.stage} failed to start ${slot.failures} times in a row (${why}); giving up`);
            return;
          }
          log(`${old.stage} failed to start (${why}); attempt ${slot.failures} of ${maxFailures}, next in ${(slot.delay / 1000).toFixed(1)} s`);
          restart(next, slot);
        },
      );
    });
  };

  for (const proc of pipeline.procs) watch(proc, { delay: minDelay, failures: 0 });
  return self;
}
