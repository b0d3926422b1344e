// The framepipe command and the TypeScript clients, against real processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { Client, ClientTimeoutError } from '../src/client/client.js';
import { ReqClient } from '../src/client/req-client.js';
import { freePorts, repoRoot, startPipeline, type TestPipeline } from './helpers.js';
import { getText, sample } from './metrics-helpers.js';

const run = promisify(execFile);
const cli = path.join(repoRoot, 'bin/framepipe.js');

describe('framepipe infer and the clients (noop profile, decoding)', () => {
  let pipe: TestPipeline;
  let dir: string;
  before(async () => {
    pipe = await startPipeline('noop', ['detect.model.decode=true', 'detect.model.delay_ms=5']);
    dir = mkdtempSync(path.join(tmpdir(), 'fp-cli-'));
    for (const n of [1, 2, 10, 11]) {
      writeFileSync(path.join(dir, `frame${n}.jpg`), await sharp({ create: { width: 10 * n, height: 20, channels: 3, background: '#808080' } }).jpeg().toBuffer());
    }
  });
  after(async () => {
    await pipe?.stop();
  });

  test('infer DIR --out results.jsonl: one line per image in natural order, summary on stderr', async () => {
    const out = path.join(dir, 'results.jsonl');
    const { stderr } = await run(process.execPath, [cli, 'infer', dir, '--out', out, '-e', pipe.endpoint, '--inflight', '3'], { timeout: 60_000 });
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; ok: boolean; width: number });
    assert.deepEqual(lines.map((l) => path.basename(l.file)), ['frame1.jpg', 'frame2.jpg', 'frame10.jpg', 'frame11.jpg']);
    assert.deepEqual(lines.map((l) => l.width), [10, 20, 100, 110]);
    assert.match(stderr, /4 image\(s\), 0 error\(s\), [\d.]+ images\/s/);
  });

  test('infer --shared-memory: the same results, the images handed over as /dev/shm files, none left', async () => {
    const out = path.join(dir, 'shm.jsonl');
    const infer = run(process.execPath, [cli, 'infer', dir, '--out', out, '-e', pipe.endpoint, '--shared-memory'], { timeout: 60_000 });
    const pid = infer.child.pid;
    await infer;
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { ok: boolean; width: number });
    assert.deepEqual(lines.map((l) => [l.ok, l.width]), [[true, 10], [true, 20], [true, 100], [true, 110]]);
    assert.deepEqual(readdirSync('/dev/shm').filter((f) => f.startsWith(`framepipe-client-${pid}-`)), []);
    // The flag really took effect: ingest took over a file for each of the 4 images.
    const ingest = pipe.procs.find((p) => p.stage === 'ingest')!;
    const metrics = (await getText(String(ingest.facts.metrics))).body;
    assert.equal(sample(metrics, 'framepipe_client_files_total{stage="ingest"}'), 4);
  });

  test('infer prints readable results and exits 1 when an image fails', async () => {
    const bad = path.join(dir, 'broken.jpg');
    writeFileSync(bad, Buffer.from('not an image'));
    const err = await run(process.execPath, [cli, 'infer', path.join(dir, 'frame1.jpg'), bad, '-e', pipe.endpoint], { timeout: 60_000 }).then(
      () => assert.fail('should exit 1'),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    assert.equal(err.code, 1);
    assert.match(err.stdout, /frame1\.jpg: 10×20, 0 detection\(s\)/);
    assert.match(err.stdout, /broken\.jpg: error BAD_IMAGE: /);
    assert.match(err.stderr, /1 error\(s\) \(BAD_IMAGE 1\)/);
  });

  test('framepipe status (direct mode) lists every stage process with its rate, from the metrics ports', async () => {
    const client = new Client(pipe.endpoint, { window: 4 });
    const image = readFileSync(path.join(dir, 'frame2.jpg'));
    const load = Promise.all(Array.from({ length: 60 }, () => client.infer(image)));
    const { stdout } = await run(process.execPath, [cli, 'status', '--profile', 'noop'], { timeout: 30_000 });
    await load;
    await client.close();
    for (const p of pipe.procs) {
      const line = stdout.split('\n').find((l) => l.includes(` ${p.child.pid} `));
      assert.ok(line, `${p.stage} (pid ${p.child.pid}) listed:\n${stdout}`);
      assert.ok(line.startsWith(p.stage), line);
      assert.match(line, / yes /, 'ready');
    }
  });

  test('scripts/healthcheck.mjs (the containers\' health check) passes against a ready process and fails where none answers', async () => {
    const script = path.join(repoRoot, 'scripts/healthcheck.mjs');
    const ingest = pipe.procs.find((p) => p.stage === 'ingest')!;
    const base = Number(new URL(String(ingest.facts.metrics)).port);
    await run(process.execPath, [script], { env: { ...process.env, FRAMEPIPE_METRICS__PORT: String(base) }, timeout: 20_000 });
    const [free] = await freePorts(1);
    await assert.rejects(run(process.execPath, [script], { env: { ...process.env, FRAMEPIPE_METRICS__PORT: String(free) }, timeout: 20_000 }));
  });

  test('infer with no such file says so', async () => {
    await assert.rejects(run(process.execPath, [cli, 'infer', path.join(dir, 'nope.jpg'), '-e', pipe.endpoint]), /nope\.jpg: no such file or folder/);
  });

  test('Client keeps a window of requests in flight and matches every reply', async () => {
    const client = new Client(pipe.endpoint, { window: 8 });
    try {
      const image = readFileSync(path.join(dir, 'frame2.jpg'));
      const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => client.infer(image, { stream: 's', frame: i })));
      assert.deepEqual(replies.map((r) => r.frame), Array.from({ length: 50 }, (_, i) => i));
      assert.ok(replies.every((r) => r.ok));
    } finally {
      await client.close();
    }
  });

  test('ReqClient: request/reply against the live pipeline', async () => {
    const client = new ReqClient(pipe.endpoint, { timeoutMs: 5000 });
    try {
      const reply = await client.infer(readFileSync(path.join(dir, 'frame10.jpg')));
      assert.equal(reply.ok && reply.width, 100);
    } finally {
      client.close();
    }
  });

  test('both clients give up on a dead endpoint in bounded time, naming it', async () => {
    const [port] = await freePorts(1);
    const dead = `tcp://127.0.0.1:${port}`;
    const req = new ReqClient(dead, { timeoutMs: 200, retries: 2 });
    const t0 = Date.now();
    await assert.rejects(req.infer(Buffer.from('x')), (err: Error) => err instanceof ClientTimeoutError && err.message.includes(dead));
    const took = Date.now() - t0;
    assert.ok(took >= 600 && took < 5000, `3 attempts of ~200 ms took ${took} ms`);
    req.close();
    const dealer = new Client(dead, { timeoutMs: 200 });
    await assert.rejects(dealer.infer(Buffer.from('x')), ClientTimeoutError);
    await dealer.close();
  });
});
