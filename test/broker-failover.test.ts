// Broker mode, nothing lost: jobs held by a replica that dies go to another replica, a replica
// written off as dead that finishes after all is not answered twice, and a replica stopped with
// SIGTERM finishes or hands back what it holds and exits 0 — real processes, real sockets.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as zmq from 'zeromq';
import { launchPipeline, spawnStage, stopProcesses, waitReady, type Pipeline, type StageProcess } from '../src/cli/launcher.js';
import { decodeReply } from '../src/protocol/request.js';
import { header, transportSets } from './helpers.js';

const HB = 200;
const image = Buffer.from('x');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const opened: StageProcess[] = [];
const pipelines: Pipeline[] = [];
after(async () => {
  await stopProcesses(opened);
  await Promise.all(pipelines.map((p) => p.stop()));
});

/** Broker, ingest, classify, sink; detect replicas are the test's to start. */
async function withoutDetect(): Promise<{ pipeline: Pipeline; sets: string[] }> {
  const sets = [...(await transportSets()), 'transport.mode=broker', `broker.heartbeat_ms=${HB}`, 'log.level=warn'];
  const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe', stages: ['ingest', 'classify', 'sink'] });
  pipelines.push(pipeline);
  return { pipeline, sets };
}

async function detect(sets: string[], delayMs: number, concurrency: number): Promise<StageProcess> {
  const proc = spawnStage('detect', { flags: { profile: 'noop', set: [...sets, `detect.model.delay_ms=${delayMs}`, `detect.concurrency=${concurrency}`] }, stdio: 'pipe' });
  opened.push(proc);
  await waitReady(proc, 30_000);
  return proc;
}

/**
 * Sends `n` requests on one DEALER; `replies(ms)` waits up to `ms` for every id to be answered,
 * then a while longer so a second reply to any of them would be counted too, and returns every
 * reply per id.
 */
function send(endpoint: string, n: number, timeoutMs: number) {
  const dealer = new zmq.Dealer({ linger: 0 });
  dealer.connect(endpoint);
  const byId = new Map<number, { ok: boolean; code?: string }[]>();
  const sent = (async () => {
    for (let i = 0; i < n; i++) await dealer.send([Buffer.alloc(0), header({ id: i, timeout_ms: timeoutMs }), image]);
  })();
  const receiving = (async () => {
    for await (const [, body] of dealer) {
      const r = decodeReply(body!);
      const list = byId.get(r.id as number) ?? [];
      list.push({ ok: r.ok, ...(r.ok ? {} : { code: r.error.code }) });
      byId.set(r.id as number, list);
    }
  })().catch(() => {});
  return {
    async replies(ms: number) {
      await sent;
      const until = Date.now() + ms;
      while (byId.size < n && Date.now() < until) await sleep(20);
      await sleep(DUPLICATE_WATCH_MS);
      dealer.close();
      await receiving;
      return byId;
    },
  };
}

/** How long to keep listening once every request is answered: any second reply comes within it (a replica's late DONE, a re-queued copy). */
const DUPLICATE_WATCH_MS = 1500;

function assertExactlyOnceOk(byId: Map<number, { ok: boolean; code?: string }[]>, n: number): void {
  for (let i = 0; i < n; i++) {
    const got = byId.get(i) ?? [];
    assert.equal(got.length, 1, `request ${i}: ${got.length} replies`);
    assert.equal(got[0]!.ok, true, `request ${i}: ${got[0]!.code}`);
  }
}

const exitOf = (proc: StageProcess) =>
  new Promise<{ code: number | null; signal: string | null }>((r) => proc.child.once('exit', (code, signal) => r({ code, signal })));

describe('broker mode: nothing lost, nothing twice', () => {
  test('jobs held by a SIGKILLed replica are retried on another one', async () => {
    const { pipeline, sets } = await withoutDetect();
    const doomed = await detect(sets, 60_000, 4);
    const load = send(pipeline.endpoint, 4, 10_000);
    await sleep(300); // all four now held by the doomed replica
    await detect(sets, 10, 4);
    const gone = exitOf(doomed);
    doomed.child.kill('SIGKILL');
    await gone;
    // Written off after `liveness` (3) silent heartbeats, then re-queued: well inside the deadline.
    assertExactlyOnceOk(await load.replies(HB * 3 + 5000), 4);
  });

  test('a replica written off as dead that finishes after all does not answer twice', async () => {
    const { pipeline, sets } = await withoutDetect();
    const slow = await detect(sets, 1500, 4);
    const load = send(pipeline.endpoint, 4, 10_000);
    await sleep(300);
    await detect(sets, 10, 4);
    const pid = slow.child.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      await sleep(HB * 5); // written off; its four jobs re-run on the other replica
      process.kill(pid, 'SIGCONT'); // and it finishes its own copies too
      // Its late DONEs must not reach the clients a second time.
      assertExactlyOnceOk(await load.replies(8000), 4);
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {}
    }
  });

  test('SIGTERM: a replica finishes or hands back what it holds and exits 0', async () => {
    const { pipeline, sets } = await withoutDetect();
    const leaving = await detect(sets, 300, 2);
    await detect(sets, 300, 2);
    const load = send(pipeline.endpoint, 40, 15_000);
    await sleep(500);
    const gone = exitOf(leaving);
    leaving.child.kill('SIGTERM');
    const t0 = Date.now();
    assert.deepEqual(await gone, { code: 0, signal: null });
    assert.ok(Date.now() - t0 < 5000, `exited in ${Date.now() - t0} ms`);
    assertExactlyOnceOk(await load.replies(14_000), 40);
  });
  test('a broker paused longer than the peers\' liveness writes none of them off: their heartbeats wait in its socket', async () => {
    const { pipeline, sets } = await withoutDetect();
    await detect(sets, 10, 4);
    const broker = pipeline.procs.find((p) => p.stage === 'broker')!;
    const load = send(pipeline.endpoint, 20, 15_000);
    await sleep(100);
    broker.child.kill('SIGSTOP');
    try {
      await sleep(HB * 3 * 3); // three times the liveness window
    } finally {
      broker.child.kill('SIGCONT');
    }
    assertExactlyOnceOk(await load.replies(10_000), 20);
    // A write-off is logged as a warning and re-queues the peer's jobs: none of that.
    assert.doesNotMatch(broker.output.join(''), /stopped heart-beating/);
  });
});
