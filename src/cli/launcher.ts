import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../config/load.js';
import { loadConfig } from '../config/load.js';
import { toArgv, toLoadOptions, type ConfigFlags } from './options.js';
import type { ProcessName, StageName } from '../stage/setup.js';

export const STAGES: StageName[] = ['ingest', 'detect', 'classify', 'sink'];

/** The `--import` hook that lets node run the TypeScript stage files, resolved from this package so any cwd works. */
const tsxHook = import.meta.resolve('tsx');

export interface LaunchOptions {
  flags: ConfigFlags;
  /** Which stages to start; default all four (and, in broker mode, the broker first). */
  stages?: StageName[];
  /** Broker mode: replicas per stage (default 1 each). */
  replicas?: Partial<Record<StageName, number>>;
  /** Children's stdout/stderr: inherited (a terminal) or piped and collected (tests). */
  stdio?: 'inherit' | 'pipe';
  /** Give up if a stage is not ready by then. */
  readyTimeoutMs?: number;
  /** Called as each stage (not the broker) reports ready: start-up progress. */
  onReady?: (proc: StageProcess) => void;
  env?: NodeJS.ProcessEnv;
  /** A command the stage runs under, e.g. `['ip', 'netns', 'exec', 'host2']` (tests across network namespaces). */
  wrap?: string[];
}

export interface StageProcess {
  stage: ProcessName;
  child: ChildProcess;
  /** Facts the stage reported when ready (endpoints, model, threads). */
  facts: Record<string, unknown>;
  /** Collected output when stdio is 'pipe'. */
  output: string[];
}

export class LaunchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LaunchError';
  }
}

/** The command line of one stage process: node, its flags, the tsx hook, the stage file and config flags. */
export function stageArgv(stage: ProcessName, flags: ConfigFlags, extraNodeArgs: string[] = []): string[] {
  return [...extraNodeArgs, '--import', tsxHook, stageFile(stage), ...toArgv(flags)];
}

export function stageFile(stage: ProcessName): string {
  return path.join(packageRoot, 'stages', `${stage}.ts`);
}

/** Spawns one stage process with the IPC channel it reports readiness on. */
export function spawnStage(stage: ProcessName, options: LaunchOptions): StageProcess {
  // FRAMEPIPE_NODE_ARGS passes node flags to every stage (e.g. --cpu-prof for profiling).
  const nodeArgs = (options.env ?? process.env).FRAMEPIPE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const argv = [process.execPath, ...stageArgv(stage, options.flags, nodeArgs)];
  const [command, ...args] = [...(options.wrap ?? []), ...argv] as [string, ...string[]];
  const child = spawn(command, args, {
    stdio: options.stdio === 'pipe' ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'inherit', 'inherit', 'ipc'],
    env: options.env ?? process.env,
  });
  const proc: StageProcess = { stage, child, facts: {}, output: [] };
  const keep = (chunk: Buffer) => {
    proc.output.push(chunk.toString());
    if (proc.output.length > 500) proc.output.splice(0, 100);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return proc;
}

export function waitReady(proc: StageProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`${proc.stage} not ready after ${timeoutMs} ms`), timeoutMs);
    const fail = (message: string) => {
      clearTimeout(timer);
      proc.child.off('message', onMessage);
      proc.child.off('exit', onExit);
      const tail = proc.output.join('').trim().split('\n').slice(-5).join('\n');
      reject(new LaunchError(tail ? `${message}\n${tail}` : message));
    };
    const onMessage = (msg: unknown) => {
      const m = msg as { type?: string; message?: string };
      if (m.type === 'ready') {
        clearTimeout(timer);
        proc.child.off('exit', onExit);
        const { type: _t, ...facts } = m as Record<string, unknown>;
        proc.facts = facts;
        resolve();
      } else if (m.type === 'failed') {
        fail(`${proc.stage} cannot start: ${m.message}`);
      }
    };
    const onExit = (code: number | null, signal: string | null) => fail(`${proc.stage} exited (${signal ?? `code ${code}`}) before it was ready`);
    proc.child.on('message', onMessage);
    proc.child.once('exit', onExit);
  });
}

/** Stops processes with SIGTERM, then SIGKILL after `graceMs`; resolves when all have exited. */
export async function stopProcesses(procs: StageProcess[], graceMs = 8000): Promise<void> {
  await Promise.all(
    procs.map(
      ({ child }) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
          child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}

export interface Pipeline {
  procs: StageProcess[];
  /** Where clients connect. */
  endpoint: string;
  /** Resolves with the first stage that exits on its own (a crash), if any. */
  firstExit: Promise<{ stage: ProcessName; code: number | null; signal: string | null }>;
  stop(): Promise<void>;
}

/**
 * Starts the stages as separate OS processes and resolves once every one has said it is ready.
 * If any fails to start, the others are stopped and the error says which stage and why.
 */
export async function launchPipeline(options: LaunchOptions): Promise<Pipeline> {
  const env = options.env ?? process.env;
  const broker = loadConfig({ ...toLoadOptions(options.flags), env }).transport.mode === 'broker';
  const procs: StageProcess[] = [];
  let stopping = false;
  const stop = async () => {
    stopping = true;
    await stopProcesses(procs);
  };
  try {
    if (broker) {
      // The rendezvous first, so that stages find it at once (they would also wait for it).
      const b = spawnStage('broker', options);
      procs.push(b);
      await waitReady(b, options.readyTimeoutMs ?? 60_000);
    }
    const names = (options.stages ?? STAGES).flatMap((stage) => Array.from({ length: broker ? (options.replicas?.[stage] ?? 1) : 1 }, () => stage));
    const started = names.map((stage) => spawnStage(stage, options));
    procs.push(...started);
    await Promise.all(started.map((p) => waitReady(p, options.readyTimeoutMs ?? 60_000).then(() => options.onReady?.(p))));
  } catch (err) {
    await stop();
    throw err;
  }
  const firstExit = new Promise<{ stage: ProcessName; code: number | null; signal: string | null }>((resolve) => {
    for (const p of procs) p.child.once('exit', (code, signal) => !stopping && resolve({ stage: p.stage, code, signal }));
  });
  const ingest = procs.find((p) => p.stage === 'ingest');
  return { procs, endpoint: String(ingest?.facts.clients ?? ''), firstExit, stop };
}
