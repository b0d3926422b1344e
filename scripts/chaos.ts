// npm run chaos [-- REQUESTS [--shared-memory]]: broker mode with detect ×2 and classify ×2 (noop
// profile with a delay), full closed-loop load while replicas are SIGKILLed at random moments and
// the broker once; the launcher's supervisor starts each one again. Every request is counted by
// id: prints sent, answered, ok, errors by code, lost and duplicate replies. --shared-memory: a
// 100 KB JPEG instead of one byte, transport.shared_memory=on (every process is on this host),
// detect decoding it — so resent and hedged copies read their image from /dev/shm — and a check
// that no framepipe directory is left there afterwards.
import { readdirSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { launchPipeline, type StageProcess } from '../src/cli/launcher.js';
import { supervise } from '../src/cli/supervisor.js';
import { loopbackTransport } from '../src/transport/ports.js';
import { countedLoad, formatCounted, type CountedResult } from '../bench/counted-load.js';
import { noiseJpeg } from '../bench/lib.js';

export interface ChaosOptions {
  requests: number;
  /** Requests in flight. */
  window?: number;
  /** Each request's deadline, ms. */
  timeoutMs?: number;
  /** Random pause between kills, ms. */
  killEveryMs?: [number, number];
  log?: (line: string) => void;
  /** Extra `--set` overrides. */
  sets?: string[];
  /** What each request sends (default one byte: the noop profile does not decode). */
  image?: Buffer;
}

export interface ChaosResult extends CountedResult {
  kills: Record<string, number>;
  restarts: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? (() => {});
  const [lo, hi] = options.killEveryMs ?? [500, 1500];
  const sets = [...(await loopbackTransport()), 'transport.mode=broker', 'broker.heartbeat_ms=200', 'log.level=error', 'detect.model.delay_ms=20', 'classify.model.delay_ms=20', ...(options.sets ?? [])];
  const launch = { flags: { profile: 'noop', set: sets }, stdio: 'pipe' as const, replicas: { detect: 2, classify: 2 } };
  const pipeline = await launchPipeline(launch);
  const supervisor = supervise(pipeline, launch, { minDelayMs: 200, maxDelayMs: 2000, log });
  const kills: Record<string, number> = {};
  try {
    const load = countedLoad(pipeline.endpoint, options.image ?? Buffer.from('x'), { window: options.window ?? 16, count: options.requests, timeoutMs: options.timeoutMs ?? 10_000 });
    let brokerKilled = false;
    const running = (p: StageProcess) => p.child.exitCode === null && p.child.signalCode === null;
    // waitReady fills `facts` once the process reported ready.
    const ready = (p: StageProcess) => Object.keys(p.facts).length > 0;
    const monkey = (async () => {
      while (load.sent < options.requests) {
        await sleep(lo + Math.random() * (hi - lo));
        let victim: StageProcess | undefined;
        if (!brokerKilled && load.sent >= options.requests / 2) {
          brokerKilled = true;
          victim = pipeline.procs.find((p) => p.stage === 'broker' && running(p) && ready(p));
        } else {
          // A replica of a stage whose replicas are all up and ready: one always survives the kill,
          // and one still starting is not killed (that would count as a failed start).
          const up = (stage: string) => pipeline.procs.filter((p) => p.stage === stage).every((p) => running(p) && ready(p));
          const replicas = pipeline.procs.filter((p) => (p.stage === 'detect' || p.stage === 'classify') && up(p.stage));
          victim = replicas[Math.floor(Math.random() * replicas.length)];
        }
        if (!victim) continue;
        log(`SIGKILL ${victim.stage} (pid ${victim.child.pid}) after ${load.sent} sent`);
        victim.child.kill('SIGKILL');
        kills[victim.stage] = (kills[victim.stage] ?? 0) + 1;
      }
    })();
    await monkey;
    const r = await load.finish((options.timeoutMs ?? 10_000) + 5000);
    return { ...r, kills, restarts: supervisor.restarts };
  } finally {
    supervisor.stop();
    await pipeline.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'shared-memory': { type: 'boolean', default: false } } });
  const requests = Number(positionals[0] ?? 2000);
  const shm = values['shared-memory'];
  const before = new Set(shm ? framepipeDirs() : []);
  const r = await runChaos({
    requests,
    log: (l) => console.error(`chaos: ${l}`),
    ...(shm ? { sets: ['transport.shared_memory=on', 'detect.model.decode=true'], image: await noiseJpeg(390) } : {}),
  });
  console.log(formatCounted(r));
  console.log(`kills ${JSON.stringify(r.kills)}, restarts ${r.restarts}`);
  // Killed replicas never hold a directory; only ingest makes one, and it stopped cleanly.
  const left = shm ? framepipeDirs().filter((d) => !before.has(d)) : [];
  if (shm) console.log(`framepipe directories left in /dev/shm: ${left.length === 0 ? 'none' : left.join(', ')}`);
  process.exitCode = r.lost === 0 && r.duplicates === 0 && r.ok >= 0.99 * r.sent && left.length === 0 ? 0 : 1;
}

function framepipeDirs(): string[] {
  return readdirSync('/dev/shm').filter((d) => d.startsWith('framepipe-'));
}
