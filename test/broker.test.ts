// Broker mode: replicas by credit, load that follows replica speed, late joiners, heartbeats,
// broker restarts, status, and replies that find their ingest — all with real processes.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchPipeline, spawnStage, stopProcesses, waitReady, type StageProcess } from '../src/cli/launcher.js';
import { fetchStatus } from '../src/cli/status.js';
import { Client } from '../src/client/client.js';
import * as zmq from 'zeromq';
import { encodeInfo, type BrokerStatus } from '../src/transport/broker-protocol.js';
import { offerLoad } from '../bench/lib.js';
import { decodeReply } from '../src/protocol/request.js';
import type { Reply } from '../src/protocol/types.js';
import { freePorts, header, reqOnce, transportSets, waitFor } from './helpers.js';
import { freeMetricsBase } from './metrics-helpers.js';

const HB = 200;
const image = Buffer.from('x');

async function brokerSets(): Promise<string[]> {
  return [...(await transportSets()), 'transport.mode=broker', `broker.heartbeat_ms=${HB}`, 'log.level=warn'];
}

const opened: StageProcess[] = [];
after(() => stopProcesses(opened));

async function replica(stage: 'broker' | 'ingest' | 'detect' | 'classify' | 'sink', sets: string[]): Promise<StageProcess> {
  const proc = spawnStage(stage, { flags: { profile: 'noop', set: sets }, stdio: 'pipe' });
  opened.push(proc);
  await waitReady(proc, 30_000);
  return proc;
}

const endpointOf = (sets: string[], key: string) => [...sets].reverse().find((s) => s.startsWith(`${key}=`))!.split('=')[1]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function status(sets: string[]): Promise<BrokerStatus> {
  return fetchStatus(endpointOf(sets, 'broker.ingest'), 3000);
}

describe('broker mode', () => {
  test('a whole pipeline runs through the broker, and status lists every process', async () => {
    const sets = await brokerSets();
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe' });
    try {
      assert.equal(pipeline.procs[0]!.stage, 'broker');
      const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => reqOnce(pipeline.endpoint, [header({ id: i }), image])));
      replies.forEach((r, i) => assert.deepEqual([r.ok, r.id], [true, i]));
      await sleep(HB * 1.5);
      const s = await status(sets);
      assert.deepEqual(s.peers.map((p) => p.stage).sort(), ['classify', 'detect', 'ingest', 'sink']);
      const detect = s.peers.find((p) => p.stage === 'detect')!;
      assert.equal(detect.done, 30);
      assert.equal(detect.pid, pipeline.procs.find((p) => p.stage === 'detect')!.child.pid);
    } finally {
      await pipeline.stop();
    }
  });

  test('two ingests and two sinks: every reply reaches the ingest that holds its client', async () => {
    const sets = await brokerSets();
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe', replicas: { sink: 2 } });
    const [clients2] = await freePorts(1);
    try {
      await replica('ingest', [...sets, `transport.clients=tcp://127.0.0.1:${clients2}`]);
      const two = `tcp://127.0.0.1:${clients2}`;
      const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => reqOnce(i % 2 ? two : pipeline.endpoint, [header({ id: `r${i}` }), image])));
      replies.forEach((r, i) => assert.deepEqual([r.ok, r.id], [true, `r${i}`]));
    } finally {
      await pipeline.stop();
    }
  });

  test('load follows replica speed: a 4× slower replica costs the pool only its own share', async (t) => {
    const sets = await brokerSets();
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe', stages: ['ingest', 'classify', 'sink'] });
    try {
      // Concurrency 2 each, so a replica's rate is 2 / delay and the round trip to the broker hides
      // behind work. Delays long beside what a loaded machine adds to every job alike (which
      // pulls the shares towards even): that way the fast replica's share stays near its 4/5.
      const fastMs = 50;
      const jobs = 200;
      const fast = await replica('detect', [...sets, `detect.model.delay_ms=${fastMs}`, 'detect.concurrency=2']);
      await replica('detect', [...sets, `detect.model.delay_ms=${fastMs * 4}`, 'detect.concurrency=2']);
      await offerLoad(pipeline.endpoint, [image], 8, 50);
      const before = (await status(sets)).peers.filter((p) => p.stage === 'detect');
      const r = await offerLoad(pipeline.endpoint, [image], 16, jobs);
      await sleep(HB * 1.5);
      const after = (await status(sets)).peers.filter((p) => p.stage === 'detect');
      const did = (pid: number | undefined, list: typeof after) => list.filter((p) => p.pid === pid).reduce((n, p) => n + p.done, 0);
      const fastDid = did(fast.child.pid, after) - did(fast.child.pid, before);
      const ideal = 2000 / fastMs + 2000 / (fastMs * 4);
      // Throughput itself is the benchmark's to report (`npm run bench -- scaling`); here the
      // behaviour: the 4× faster replica does its 4/5 share of the work (hedged copies included).
      t.diagnostic(`fast + 4× slow: ${r.perSecond.toFixed(1)}/s of ${ideal}/s, p99 ${r.p99.toFixed(1)} ms; fast replica did ${fastDid} of ${jobs}`);
      assert.equal(r.errors, 0);
      assert.ok(fastDid >= 0.7 * jobs, `the fast replica did ${fastDid} of ${jobs} jobs (its share by speed: ${0.8 * jobs})`);
    } finally {
      await pipeline.stop();
    }
  });

  test('hedging: an idle fast replica takes a copy of the slow replica\'s job; the first answer wins, each request answered once', async () => {
    for (const hedge of [true, false]) {
      const sets = [...(await brokerSets()), `broker.hedge=${hedge}`];
      const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe', stages: ['ingest', 'classify', 'sink'] });
      const client = new Client(pipeline.endpoint, { window: 50, timeoutMs: 10_000 });
      try {
        await replica('detect', [...sets, 'detect.model.delay_ms=5']);
        // Unmeasured at first, the slow replica gets one of the first jobs; it then holds it 800 ms.
        await replica('detect', [...sets, 'detect.model.delay_ms=800']);
        const replies = await Promise.all(Array.from({ length: 12 }, () => client.infer(image)));
        // The client numbers its requests 1, 2, …: each promise got the reply to its own request.
        assert.deepEqual(replies.map((r) => [r.ok, r.id]), replies.map((_, i) => [true, i + 1]));
        if (hedge) {
          // The slow copy comes back (800 ms after it was sent) and is dropped; a little longer
          // for a result that should not exist (the dropped copy passed on after all) to arrive.
          await waitFor('the slow copy answered and dropped', async () => (await status(sets)).stats!.duplicates! >= 1, 10_000, 50);
          await sleep(HB);
        } else {
          // Long enough for the slow replica's answer (here the only one) to come back.
          await sleep(1200);
        }
        const stats = (await status(sets)).stats!;
        if (hedge) {
          assert.ok(stats.hedged! >= 1, `hedged ${stats.hedged}`);
          assert.ok(stats.duplicates! >= 1, `the slow copy's answer dropped at the broker (duplicates ${stats.duplicates})`);
          assert.equal(stats.results, 12, 'the broker passed on exactly one result per request');
        } else {
          assert.equal(stats.hedged, 0);
          assert.equal(stats.duplicates, 0);
        }
      } finally {
        await client.close();
        await pipeline.stop();
      }
    }
  });

  test('credit lost on the way comes back: a replica whose heartbeats say it holds nothing gets its credit, and the lost job runs elsewhere', async () => {
    // Hedging off, so that only the credit check can rescue the job.
    const sets = [...(await brokerSets()), 'broker.hedge=false'];
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe', stages: ['ingest', 'classify', 'sink'] });
    // A replica that "loses" the job it is given (as a JOB dropped to a blipped connection is lost),
    // and keeps heart-beating that its one slot is free.
    const lossy = new zmq.Dealer({ routingId: 'detect-lossy-1', linger: 0 });
    lossy.connect(endpointOf(sets, 'broker.detect'));
    const info = (credit: number) => encodeInfo({ stage: 'detect', host: 'lossy', pid: 1, credit, concurrency: 1, done: 0 });
    await lossy.send([Buffer.from('READY'), info(1)]);
    const beat = setInterval(() => void lossy.send([Buffer.from('HB'), info(1)]).catch(() => {}), HB);
    const client = new Client(pipeline.endpoint, { window: 4, timeoutMs: 20 * HB + 5000 });
    try {
      const reply = client.infer(image);
      // The broker's heartbeats may come first; wait for the job itself.
      let cmd: Buffer | undefined;
      do [cmd] = await lossy.receive();
      while (cmd?.toString() === 'HB');
      assert.equal(cmd!.toString(), 'JOB');
      await replica('detect', sets);
      const r = await reply;
      assert.equal(r.ok, true, 'the lost job was queued again and answered by the other replica');
      const s = await status(sets);
      assert.ok(s.stats!.restored! >= 1 && s.stats!.requeued! >= 1, JSON.stringify(s.stats));
      assert.equal(s.peers.find((p) => p.id === 'detect-lossy-1')!.credit, 1, 'the lossy replica has its slot back');
    } finally {
      clearInterval(beat);
      lossy.close();
      await client.close();
      await pipeline.stop();
    }
  });

  test("a replica cut off from its broker says so on /readyz, and is ready again when the broker is back", async () => {
    // Metrics ports of its own: by now earlier tests' replicas (stopped only at the end) and any
    // other framepipe on this host may hold every detect slot of the default base.
    const sets = [...(await brokerSets()), `metrics.port=${await freeMetricsBase()}`];
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe' });
    const broker = pipeline.procs.find((p) => p.stage === 'broker')!;
    const detect = pipeline.procs.find((p) => p.stage === 'detect')!;
    const readyz = async () => {
      const res = await fetch(String(detect.facts.metrics).replace(/\/metrics$/, '/readyz'));
      return { status: res.status, text: await res.text() };
    };
    try {
      assert.equal((await readyz()).status, 200);
      broker.child.kill('SIGSTOP');
      await waitFor('detect not ready', async () => (await readyz()).status === 503, 3 * HB * 3 + 8000, 50);
      assert.match((await readyz()).text, /broker .* silent/);
      broker.child.kill('SIGCONT');
      await waitFor('detect ready again', async () => (await readyz()).status === 200, 3 * HB * 3 + 8000, 50);
    } finally {
      broker.child.kill('SIGCONT');
      await pipeline.stop();
    }
  });

  test('jobs left queued past their deadline (no detect replica at all) leave the broker', async () => {
    const sets = await brokerSets();
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe', replicas: { detect: 0 } });
    // A plain DEALER, not the Client: the Client gives up 250 ms after the deadline, and on a
    // loaded machine ingest's TIMEOUT answer may come later than that.
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(pipeline.endpoint);
    try {
      for (let id = 0; id < 30; id++) await dealer.send([Buffer.alloc(0), header({ id, timeout_ms: 300 }), image]);
      const replies = new Map<unknown, Reply>();
      for (const until = Date.now() + 5000; replies.size < 30 && Date.now() < until; ) {
        dealer.receiveTimeout = Math.max(1, until - Date.now());
        const frames = await dealer.receive().catch(() => undefined);
        if (!frames) break;
        const r = decodeReply(frames[frames.length - 1]!);
        replies.set(r.id, r);
      }
      assert.equal(replies.size, 30, 'every request answered');
      const codes = [...replies.values()].map((r) => (r.ok ? 'ok' : r.error.code));
      assert.ok(codes.every((c) => c === 'TIMEOUT'), `every request answered TIMEOUT: ${codes.join(', ')}`);
      // Each heartbeat drops what is past its deadline; a few of them, and slack for a loaded machine.
      await waitFor('the queue to empty', async () => (await status(sets)).queued.detect === 0, 4 * HB + 5000, 50);
    } finally {
      dealer.close();
      await pipeline.stop();
    }
  });

  test('a replica that joins while a backlog waits takes only its share', async (t) => {
    const sets = await brokerSets();
    // A backlog that lasts (260 jobs at 40 ms, 2 at a time: over 5 s for one replica) well past
    // a joiner's start-up on a slow machine, so the rest it shares is large.
    const delay = 'detect.model.delay_ms=40';
    const jobs = 260;
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: [...sets, delay] }, stdio: 'pipe' });
    try {
      const load = offerLoad(pipeline.endpoint, [image], 120, jobs);
      await waitFor('a backlog at the broker', async () => (await status(sets)).queued.detect! > 50, 5000, 50);
      const tj = Date.now();
      const joiner = await replica('detect', [...sets, delay]);
      t.diagnostic(`joiner started in ${Date.now() - tj} ms`);
      // Right after joining, the backlog is still at the broker: the joiner holds its credit's worth, no more.
      const s = await status(sets);
      assert.ok(s.queued.detect! > 20, `backlog stays queued (${s.queued.detect})`);
      const doneAtJoin = s.peers.find((p) => p.stage === 'detect' && p.pid !== joiner.child.pid)?.done ?? 0;
      const r = await load;
      assert.equal(r.errors, 0);
      const mine = (await status(sets)).peers.find((p) => p.pid === joiner.child.pid)!;
      // Both run at the same speed: from the join on, they split the rest about evenly.
      const rest = jobs - doneAtJoin;
      t.diagnostic(`queued at join ${s.queued.detect}; joiner did ${mine.done} of the ${rest} left at its join`);
      assert.ok(mine.done >= 0.35 * rest && mine.done <= 0.65 * rest, `joiner did ${mine.done} of the ${rest} left at its join`);
    } finally {
      await pipeline.stop();
    }
  });

  test('a replica that stops heart-beating leaves dispatch; when it comes back it is used again', async () => {
    const sets = await brokerSets();
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe' });
    const second = await replica('detect', sets);
    const pid = second.child.pid!;
    const listed = async () => (await status(sets)).peers.some((p) => p.pid === pid);
    try {
      process.kill(pid, 'SIGSTOP');
      await waitFor('the stopped replica written off', async () => !(await listed()), HB * 8, 50);
      // Jobs still flow through the one left.
      const r = await offerLoad(pipeline.endpoint, [image], 4, 40);
      assert.equal(r.errors, 0);
      process.kill(pid, 'SIGCONT');
      await waitFor('the replica back in the table', listed, HB * 8, 50);
      const before = (await status(sets)).peers.find((p) => p.pid === pid)!.done;
      await offerLoad(pipeline.endpoint, [image], 8, 200);
      await sleep(HB);
      const afterward = (await status(sets)).peers.find((p) => p.pid === pid)!.done;
      assert.ok(afterward > before, `the returned replica takes jobs again (${before} → ${afterward})`);
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {}
      await pipeline.stop();
    }
  });

  test('jobs queued in a broker that dies are sent again by their ingest: every request succeeds', async () => {
    const sets = [...(await brokerSets()), 'detect.model.delay_ms=150'];
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe' });
    const client = new Client(pipeline.endpoint, { window: 20, timeoutMs: 15_000 });
    try {
      // One detect replica at 150 ms a job: most of these wait in the broker's queue.
      const replies = Promise.all(Array.from({ length: 12 }, () => client.infer(image)));
      await sleep(250);
      const old = pipeline.procs.find((p) => p.stage === 'broker')!;
      const gone = new Promise((r) => old.child.once('exit', r));
      old.child.kill('SIGKILL');
      await gone;
      await replica('broker', sets);
      const all = await replies;
      assert.deepEqual(all.filter((r) => !r.ok).map((r) => (r.ok ? '' : r.error.code)), [], 'no request lost with the broker');
    } finally {
      await client.close();
      await pipeline.stop();
    }
  });

  test('after a broker restart the replicas re-register by themselves within three heartbeats', async (t) => {
    const sets = await brokerSets();
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe', stages: ['ingest', 'detect', 'classify', 'sink'] });
    try {
      assert.equal((await offerLoad(pipeline.endpoint, [image], 4, 40)).errors, 0);
      const old = pipeline.procs.find((p) => p.stage === 'broker')!;
      const gone = new Promise((r) => old.child.once('exit', r));
      old.child.kill('SIGKILL');
      await gone;
      await sleep(HB * 2);
      await replica('broker', sets);
      const t0 = Date.now();
      // Nothing but the broker restarted: each process's own heartbeat registers it with the new
      // one — after at most a reconnect back-off (≤ HB) and a beat interval (≤ HB). Three heartbeats,
      // plus slack for a loaded machine; far less than any restart or long timeout would take.
      const everyone = ['classify', 'detect', 'ingest', 'sink'];
      const listed = async () => {
        try {
          return (await status(sets)).peers.map((p) => p.stage).sort().join() === everyone.join();
        } catch {
          return false;
        }
      };
      await waitFor('ingest, detect, classify and sink registered with the new broker', listed, HB * 3 + 2000, 50);
      const recovered = Date.now() - t0;
      t.diagnostic(`all four re-registered ${recovered} ms after the new broker was ready`);
      const again = await reqOnce(pipeline.endpoint, [header({ id: 'again' }), image]);
      assert.deepEqual([again.ok, again.id], [true, 'again'], 'a request goes through the new broker');
      const r = await offerLoad(pipeline.endpoint, [image], 8, 200);
      assert.equal(r.errors, 0);
    } finally {
      await pipeline.stop();
    }
  });
});
