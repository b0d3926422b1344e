// `framepipe start` keeps its stages running: a stage SIGKILLed under load comes back and
// requests flow again; one that cannot start again stops everything with the reason.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import * as zmq from 'zeromq';
import { launchPipeline } from '../src/cli/launcher.js';
import { supervise } from '../src/cli/supervisor.js';
import { countedLoad, formatCounted } from '../bench/counted-load.js';
import { alive, repoRoot, transportSets, waitFor } from './helpers.js';

const image = Buffer.from('x');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the launcher restarts stages', () => {
  test('SIGKILL detect under load: it comes back, no request is lost or fails, Ctrl-C still stops all', async (t) => {
    const sets = (await transportSets()).flatMap((s) => ['--set', s]);
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/framepipe.js'), 'start', '--profile', 'noop', ...sets, '--set', 'detect.model.delay_ms=5', '--set', 'log.level=warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FRAMEPIPE_RESTART_MIN_MS: '200' },
    });
    let out = '';
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await waitFor('pipeline ready', () => /pipeline ready/.test(out), 60_000);
      const pids = Object.fromEntries([...out.matchAll(/(ingest|detect|classify|sink) (\d+)/g)].map((m) => [m[1], Number(m[2])]));
      const endpoint = /clients connect to (\S+)/.exec(out)![1]!;
      const load = countedLoad(endpoint, image, { window: 8, timeoutMs: 8000 });
      await sleep(500);
      process.kill(pids.detect!, 'SIGKILL');
      await waitFor('detect restarted', () => /detect restarted \(pid \d+\)/.test(out), 30_000);
      const newPid = Number(/detect restarted \(pid (\d+)\)/.exec(out)![1]);
      const atRestart = load.replies;
      // Requests go on after the restart (a wait, not a rate: the host may be slow).
      await waitFor('50 more replies after the restart', () => load.replies - atRestart > 50, 15_000);
      const r = await load.finish(9000);
      t.diagnostic(formatCounted(r));
      assert.match(out, /detect \(pid \d+\) killed by SIGKILL after [\d.]+ s; restarting in 0\.2 s/);
      assert.equal(r.lost, 0, 'every request answered');
      // The jobs that died with detect are sent again by ingest once the launcher reports the restart.
      assert.equal(r.ok, r.sent, `every request succeeded: ${formatCounted(r)}`);
      assert.equal(r.duplicates, 0);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, out);
      await waitFor('every stage gone, the new detect too', () => [...Object.values(pids), newPid].every((p) => !alive(p)), 10_000);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('a stage that cannot start again is retried a few times, then everything stops with the reason', async () => {
    const sets = await transportSets();
    const pipeline = await launchPipeline({ flags: { profile: 'noop', set: sets }, stdio: 'pipe' });
    const supervisor = supervise(pipeline, { flags: { profile: 'noop', set: sets }, stdio: 'pipe' }, { minDelayMs: 50, maxStartFailures: 3 });
    const squatter = new zmq.Pull();
    try {
      const detect = pipeline.procs.find((p) => p.stage === 'detect')!;
      const gone = new Promise((r) => detect.child.once('exit', r));
      detect.child.kill('SIGKILL');
      await gone;
      // Its port taken by someone else: every restart fails with ADDRESS_IN_USE.
      await squatter.bind(sets.find((s) => s.startsWith('transport.detect='))!.split('=')[1]!);
      const reason = await supervisor.gaveUp;
      assert.match(reason, /^detect failed to start 3 times in a row \(detect cannot start: .*already in use.*\); giving up$/);
    } finally {
      supervisor.stop();
      squatter.close();
      await pipeline.stop();
    }
  });
});
