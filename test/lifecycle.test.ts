// Starting and stopping: clear start-up failures, clean stops with no orphans, and replies that
// find their way back when several ingests share the stages.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import * as zmq from 'zeromq';
import { decodeReply } from '../src/protocol/request.js';
import type { Reply } from '../src/protocol/types.js';
import { stageFile, launchPipeline, stopProcesses, spawnStage } from '../src/cli/launcher.js';
import { alive, header, repoRoot, reqOnce, transportSets, freePorts, waitFor } from './helpers.js';

const tsx = import.meta.resolve('tsx');

function runStageOnce(stage: 'ingest' | 'detect', args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', tsx, stageFile(stage), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stderr += d.toString()));
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, stderr });
    });
  });
}


async function waitGone(pids: number[], ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (pids.every((p) => !alive(p))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Starts `framepipe start` as a user would and waits for its ready line. */
function startCli(args: string[]): Promise<{ child: ChildProcess; pids: number[]; out: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/framepipe.js'), 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no ready line:\n${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /pipeline ready \(([^)]*)\)/.exec(out);
      if (m) {
        clearTimeout(timer);
        const pids = [...m[1]!.matchAll(/(\d+)/g)].map((x) => Number(x[1]));
        resolve({ child, pids, out: () => out });
      }
    };
    child.stderr!.on('data', onData);
    child.stdout!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`framepipe start exited ${code}:\n${out}`)));
  });
}

describe('start-up failures are clear and non-zero', () => {
  test('a bad setting names the key', async () => {
    const { code, stderr } = await runStageOnce('detect', ['--profile', 'noop', '--set', 'detect.threads=0']);
    assert.equal(code, 2);
    assert.match(stderr, /detect\.threads/);
  });

  test('an unknown key is named', async () => {
    const { code, stderr } = await runStageOnce('detect', ['--profile', 'noop', '--set', 'transport.hwn=5']);
    assert.equal(code, 2);
    assert.match(stderr, /unknown key\(s\) hwn/);
  });

  test('an unknown profile lists the known ones', async () => {
    const { code, stderr } = await runStageOnce('detect', ['--profile', 'nosuch']);
    assert.equal(code, 2);
    assert.match(stderr, /nosuch\.yaml does not exist.*ocr/);
  });

  test('a missing model file says where it looked', async () => {
    const sets = await transportSets();
    const { code, stderr } = await runStageOnce('detect', ['--profile', 'ocr', ...sets.flatMap((s) => ['--set', s]), '--set', 'detect.model.path=missing-det.onnx']);
    assert.equal(code, 1);
    assert.match(stderr, /MODEL_MISSING/);
    assert.match(stderr, /missing-det\.onnx/);
  });

  test('a port already taken gives ADDRESS_IN_USE', async () => {
    const [port] = await freePorts(1);
    const squatter = new zmq.Router();
    await squatter.bind(`tcp://127.0.0.1:${port}`);
    try {
      const sets = (await transportSets()).filter((s) => !s.startsWith('transport.clients'));
      const { code, stderr } = await runStageOnce('ingest', ['--profile', 'noop', '--set', `transport.clients=tcp://127.0.0.1:${port}`, ...sets.flatMap((s) => ['--set', s])]);
      assert.equal(code, 1);
      assert.match(stderr, /ADDRESS_IN_USE/);
      assert.match(stderr, new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
    } finally {
      squatter.close();
    }
  });

  test('the launcher reports which stage failed and stops the others', async () => {
    const sets = await transportSets();
    await assert.rejects(
      launchPipeline({ flags: { profile: 'ocr', set: [...sets, 'classify.model.path=nope.onnx'] }, stdio: 'pipe' }),
      /classify cannot start: .*nope\.onnx/,
    );
  });
});

describe('stopping', () => {
  test('SIGTERM to `framepipe start` stops every stage, exit 0, and the ports are free for the next start', async () => {
    const sets = (await transportSets()).flatMap((s) => ['--set', s]);
    const first = await startCli(['--profile', 'noop', ...sets]);
    assert.equal(first.pids.length, 4);
    const exited = new Promise<number | null>((r) => first.child.on('exit', (code) => r(code)));
    first.child.kill('SIGTERM');
    assert.equal(await exited, 0, first.out());
    assert.ok(await waitGone(first.pids, 10_000), 'all stage processes gone');
    const second = await startCli(['--profile', 'noop', ...sets]);
    second.child.kill('SIGINT');
    await new Promise((r) => second.child.on('exit', r));
    assert.ok(await waitGone(second.pids, 10_000));
  });

  test('a stage that gets SIGINT and then SIGTERM (Ctrl-C, then the launcher) stops once and says so once', async () => {
    const sets = (await transportSets()).flatMap((s) => ['--set', s]);
    // OCR's classify: closing its recognizer workers takes long enough for the second signal to
    // arrive while it stops.
    const child = spawn(process.execPath, ['--import', tsx, stageFile('classify'), '--profile', 'ocr', ...sets], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const t0 = Date.now();
    while (!out.includes('"msg":"classify ready"') && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20));
    assert.ok(out.includes('"msg":"classify ready"'), out);
    child.kill('SIGINT');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    const lines = out.split('\n');
    assert.equal(lines.filter((line) => line.includes('"msg":"stopping"')).length, 1, out);
    assert.equal(lines.filter((line) => line.includes('"msg":"classify stopped"')).length, 1, out);
  });

  test('SIGKILL of the launcher leaves no orphan stage behind', async () => {
    const sets = (await transportSets()).flatMap((s) => ['--set', s]);
    const run = await startCli(['--profile', 'noop', ...sets]);
    run.child.kill('SIGKILL');
    assert.ok(await waitGone(run.pids, 10_000), 'stages exit when their launcher dies');
  });
});

describe('return path with two ingests', () => {
  test('every reply reaches the ingest that holds its client', async () => {
    const base = await transportSets();
    const [clients2, replies2] = await freePorts(2);
    const shared = { profile: 'noop', set: base };
    const pipeline = await launchPipeline({ flags: shared, stdio: 'pipe' });
    const second = spawnStage('ingest', {
      flags: { profile: 'noop', set: [...base, `transport.clients=tcp://127.0.0.1:${clients2}`, `transport.replies=tcp://127.0.0.1:${replies2}`] },
      stdio: 'pipe',
    });
    try {
      await new Promise<void>((resolve, reject) => {
        second.child.on('message', (m: { type?: string }) => m.type === 'ready' && resolve());
        second.child.on('exit', () => reject(new Error(second.output.join(''))));
      });
      const one = pipeline.endpoint;
      const two = `tcp://127.0.0.1:${clients2}`;
      const replies = await Promise.all(
        Array.from({ length: 40 }, (_, i) => reqOnce(i % 2 ? two : one, [header({ id: `r${i}` }), Buffer.from('x')])),
      );
      replies.forEach((r, i) => {
        assert.equal(r.ok, true);
        assert.equal(r.id, `r${i}`);
      });
    } finally {
      await stopProcesses([second]);
      await pipeline.stop();
    }
  });
});

describe('ingest shutdown', () => {
  test('SIGTERM while requests are in flight: each gets its result, and one sent during the drain gets OVERLOADED', async () => {
    // The three are in detect together for 1 s: from SIGTERM on, the drain lasts about that long
    // (well inside its 2 s grace), and `late` must land within it.
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: [...(await transportSets()), 'detect.model.delay_ms=1000', 'detect.concurrency=3'] }, stdio: 'pipe' });
    const ingest = pipeline.procs.find((p) => p.stage === 'ingest')!;
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(pipeline.endpoint);
    const replies = new Map<string, Reply>();
    dealer.receiveTimeout = 5000;
    const receiveUntil = async (id: string) => {
      while (!replies.has(id)) {
        const frames = await dealer.receive();
        const reply = decodeReply(frames[frames.length - 1]!);
        assert.ok(!replies.has(String(reply.id)), `a second reply for ${reply.id}`);
        replies.set(String(reply.id), reply);
      }
    };
    try {
      for (let i = 0; i < 3; i++) await dealer.send([header({ id: `in-${i}` }), Buffer.from('x')]);
      // A malformed request behind them on the same connection is answered at once, and only
      // after ingest has read (and accepted) the three before it.
      await dealer.send([header({ id: 'marker', stream: 'm', latest: 'yes' }), Buffer.from('x')]);
      await receiveUntil('marker');
      const marker = replies.get('marker')!;
      assert.equal(marker.ok ? 'ok' : marker.error.code, 'BAD_REQUEST');
      assert.ok(!replies.has('in-0'), 'the three are still in flight at SIGTERM');
      ingest.child.kill('SIGTERM');
      // ingest logs "stopping" as it handles the signal, and starts draining in the same step.
      await waitFor('ingest logs "stopping"', () => ingest.output.join('').includes('"msg":"stopping"'), 10_000, 5);
      await dealer.send([header({ id: 'late' }), Buffer.from('x')]);
      for (const id of ['late', 'in-0', 'in-1', 'in-2']) await receiveUntil(id);
      for (let i = 0; i < 3; i++) assert.equal(replies.get(`in-${i}`)?.ok, true, `in-${i} got its result`);
      const late = replies.get('late')!;
      assert.equal(late.ok, false);
      if (!late.ok) assert.equal(late.error.code, 'OVERLOADED');
    } finally {
      dealer.close();
      await pipeline.stop();
    }
  });
});
