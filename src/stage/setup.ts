import { Command } from 'commander';
import { exitWhenIdle } from '../exit-guard.js';
import { StartupError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { addConfigOptions, toLoadOptions, type ConfigFlags } from '../cli/options.js';
import { createLogger, type Logger } from '../log.js';
import { startProcessMetrics } from '../metrics/process-metrics.js';

export type StageName = 'ingest' | 'detect' | 'classify' | 'sink';
/** Every kind of process framepipe starts: the four stages and the broker. */
export type ProcessName = StageName | 'broker';

export interface StageContext {
  config: Config;
  log: Logger;
  /** Aborts on SIGINT, SIGTERM, or when the launcher that started this process goes away. */
  signal: AbortSignal;
  /** Announces readiness: one log line, and a message to the launcher when there is one. */
  ready(facts: Record<string, unknown>): void;
  /** Registers cleanup, run in reverse order on the way out. */
  onClose(fn: () => Promise<void> | void): void;
  /** Runs the cleanup and exits; `code` 0 for a normal stop. */
  exit(code: number): Promise<never>;
}

/**
 * Everything a stage process does before its first message: flags, configuration, logger,
 * signals. A bad configuration or any start-up failure ends the process with one clear line
 * and a non-zero exit code.
 */
export function setupStage(stage: ProcessName, argv: string[] = process.argv): StageContext {
  const program = addConfigOptions(new Command(`framepipe-${stage}`)).allowExcessArguments(false);
  program.parse(argv);
  const flags = program.opts<ConfigFlags>();
  let config: Config;
  try {
    config = loadConfig(toLoadOptions(flags));
  } catch (err) {
    process.stderr.write(`framepipe ${stage}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger(stage, config.log.level);
  const closers: (() => Promise<void> | void)[] = [];
  const stop = new AbortController();
  let exiting = false;

  const exit = async (code: number): Promise<never> => {
    if (!exiting) {
      exiting = true;
      for (const fn of closers.reverse()) {
        try {
          await fn();
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'cleanup failed');
        }
      }
      log.flush?.();
    }
    exitWhenIdle(code);
    // The process ends in exitWhenIdle; nothing after an exit() runs.
    return new Promise<never>(() => {});
  };

  const onSignal = (signal: string) => {
    // Ctrl-C reaches every process of the group and the launcher then sends SIGTERM as well:
    // the second one changes nothing, so it is not news.
    if (stop.signal.aborted) {
      log.debug({ signal }, 'already stopping');
      return;
    }
    log.info({ signal }, 'stopping');
    stop.abort();
    // A stuck cleanup must still end the process (once no inference call is mid-way in a
    // worker thread: ending one there aborts the process, src/exit-guard.ts).
    setTimeout(() => exitWhenIdle(code130(signal)), 10_000).unref();
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  // Started by the launcher: if it dies (even by SIGKILL), the IPC channel closes and we go too,
  // so no stage is ever orphaned holding its ports.
  process.once('disconnect', () => onSignal('disconnect'));

  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception');
    void exit(1);
  });
  process.on('unhandledRejection', (err) => {
    log.error({ err }, 'unhandled rejection');
  });

  return {
    config,
    log,
    signal: stop.signal,
    ready(facts) {
      log.info({ profile: config.profile, ...facts }, `${stage} ready`);
      process.send?.({ type: 'ready', stage, pid: process.pid, ...facts });
    },
    onClose(fn) {
      closers.push(fn);
    },
    exit,
  };
}

function code130(signal: string): number {
  return signal === 'SIGINT' ? 130 : 143;
}

/** Runs a stage's main function; a start-up failure is one clear line and exit code 1. */
export async function runStage(stage: ProcessName, main: (ctx: StageContext) => Promise<void>): Promise<void> {
  const ctx = setupStage(stage);
  try {
    // Before the model loads, so /healthz answers (and /readyz says 'starting') during warm-up.
    await startProcessMetrics(ctx, stage);
    await main(ctx);
    await ctx.exit(0);
  } catch (err) {
    const code = err instanceof StartupError ? err.code : 'START_FAILED';
    ctx.log.fatal({ code, err: (err as Error).message }, `${stage} cannot start: ${(err as Error).message}`);
    process.send?.({ type: 'failed', stage, code, message: (err as Error).message });
    await ctx.exit(1);
  }
}
