// Same-host hops through /dev/shm (transport.shared_memory): the job format on real files, and
// real stage processes that pass a large image by name, read it where it is needed, and leave
// nothing behind — answered, timed out, or killed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import os from 'node:os';
import sharp from 'sharp';
import { noiseJpeg } from '../bench/lib.js';
import { SharedMemoryError } from '../src/protocol/errors.js';
import { decodeJob, decodeResult, encodeJob, encodeOrFail, encodeResult, loadParts, type Job } from '../src/protocol/job.js';
import { Packr } from 'msgpackr';
import { ClientFiles, isLocalEndpoint, PartStore, readPart, SHARED_BASE, SharedDir, sharedMemoryAvailable } from '../src/transport/shared-parts.js';
import { createLogger } from '../src/log.js';
import { header, repoRoot, reqOnce, startPipeline, waitFor, type TestPipeline } from './helpers.js';

const skip = sharedMemoryAvailable() ? false : `${SHARED_BASE} is not a writable directory here`;
const log = createLogger('test', 'silent');


/** The part files in a shared directory (without its owner file). */
function partFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f !== 'owner').sort();
}

const packMeta = (meta: Record<string, unknown>): Buffer => new Packr({ useRecords: false }).pack(meta);

/**
 * How long detect holds each job in the pipelines below: the window in which a test looks at
 * (or deletes) a job's file while it is in flight. Wide, so a loaded machine cannot close it.
 */
const DETECT_MS = 1500;

/** Polls `dir` every 10 ms until it holds exactly one part file of `size` bytes; its name. */
async function oneFullPart(dir: string, size: number, ms = 10_000): Promise<string> {
  const until = Date.now() + ms;
  let seen: string[] = [];
  for (;;) {
    seen = partFiles(dir);
    // ingest writes its file in place: wait for the whole of it, not a file being written.
    if (seen.length === 1 && (statSync(`${dir}/${seen[0]}`, { throwIfNoEntry: false })?.size ?? 0) >= size) return seen[0]!;
    if (Date.now() > until) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`not exactly one part file of ${size} bytes in ${dir} within ${ms} ms: ${seen.join(', ') || 'none'}`);
}

function newJob(dir: string | undefined, image: Buffer, job = 1): Job {
  const now = Date.now();
  return { meta: { job, origin: 'tcp://127.0.0.1:1', id: 'a', deadline: now + 10_000, accepted: now, options: {}, timings: {}, parts: [], ...(dir ? { shm: dir } : {}) }, image };
}

describe('closing ingest\'s shared directory while a stage still writes into it', { skip }, () => {
  test('it goes, late writes and all: nothing of it is left in /dev/shm', async () => {
    const ours = () => readdirSync(SHARED_BASE).filter((d) => d.startsWith(`framepipe-${process.pid}-`));
    const before = ours();
    const dir = SharedDir.create(log);
    // Another process writing late parts into it as fast as it can: rm -r meets new files.
    const writer = spawn(process.execPath, ['-e', `const fs = require('fs'); for (let i = 1; ; i++) { try { fs.writeFileSync('${dir.path}/' + i + '.pixels.detect', 'x'); } catch { process.exit(0); } }`], { stdio: 'ignore' });
    const exited = new Promise((r) => writer.once('exit', r));
    try {
      await waitFor('the writer got going', () => partFiles(dir.path).length >= 100, 10_000, 5);
      dir.close();
      // Moved aside before removal, so the writer's next file finds no directory (as a late stage's would).
      assert.equal(existsSync(dir.path), false);
      assert.deepEqual(ours(), before, 'not left under another name either');
    } finally {
      writer.kill('SIGKILL');
      await exited;
      rmSync(dir.path, { recursive: true, force: true });
    }
  });
});

describe('the job format with shared parts (real files)', { skip }, () => {
  let dir: SharedDir;
  before(() => {
    dir = SharedDir.create(log);
  });
  after(() => dir.close());

  test('a large part travels by name, is read once where needed, and comes back as a frame for a remote hop', () => {
    const image = Buffer.alloc(100_000, 3);
    const frames = encodeJob(newJob(dir.path, image), new PartStore(65_536, 'ingest'));
    assert.equal(frames.length, 1, 'no image frame: only the header travels');
    assert.deepEqual(partFiles(dir.path), ['1.image.ingest']);
    const job = decodeJob(frames);
    assert.equal(job.image, undefined, 'not read until asked');
    assert.deepEqual(job.shared, { image: { file: '1.image.ingest', size: 100_000 } });
    assert.deepEqual(job.meta.written, ['1.image.ingest']);

    // A stage that does not read it passes the name on: nothing is written again.
    const passed = decodeJob(encodeJob(job, new PartStore(0, 'detect')));
    assert.deepEqual(passed.shared, { image: { file: '1.image.ingest', size: 100_000 } });
    loadParts(passed);
    assert.ok(passed.image!.equals(image));

    // Read and unchanged: still by name. Towards another host (no store): as a frame.
    assert.equal(encodeJob(passed, new PartStore(0, 'classify')).length, 1);
    assert.deepEqual(partFiles(dir.path), ['1.image.ingest']);
    const remote = encodeJob(decodeJob(frames));
    assert.equal(remote.length, 2);
    assert.ok(remote[1]!.equals(image));
  });

  test('a part a stage changes gets a file of its own: a resent copy still finds the original bytes', () => {
    // A raw BGR frame from a client, as ingest sends it; detect turns it into RGB.
    const bgr = Buffer.alloc(90_000, 0);
    for (let i = 0; i < bgr.length; i += 3) bgr[i] = 255;
    const sent = newJob(dir.path, Buffer.alloc(0), 6);
    delete sent.image;
    sent.pixels = bgr;
    sent.meta.pixels = { width: 100, height: 300, channels: 3, order: 'bgr' };
    const original = encodeJob(sent, new PartStore(0, 'ingest'));

    const atDetect = decodeJob(original);
    loadParts(atDetect);
    const rgb = Buffer.from(atDetect.pixels!);
    for (let i = 0; i < rgb.length; i += 3) [rgb[i], rgb[i + 2]] = [rgb[i + 2]!, rgb[i]!];
    atDetect.pixels = rgb;
    atDetect.meta.pixels = { width: 100, height: 300, channels: 3 };
    const onward = decodeJob(encodeJob(atDetect, new PartStore(0, 'detect')));
    assert.equal(onward.shared!.pixels!.file, '6.pixels.detect');
    assert.deepEqual(onward.meta.written, ['6.pixels.ingest', '6.pixels.detect'], 'both files listed, for ingest to delete');

    const resent = decodeJob(original);
    loadParts(resent);
    assert.ok(resent.pixels!.equals(bgr), 'the copy ingest kept still reads BGR');
    loadParts(onward);
    assert.ok(onward.pixels!.equals(rgb));
    dir.release(6, onward.meta.written!);
    assert.deepEqual(partFiles(dir.path).filter((f) => f.startsWith('6.')), []);
  });

  test('a small part, or a job without a shared directory, rides as a frame', () => {
    assert.equal(encodeJob(newJob(dir.path, Buffer.alloc(1000), 2), new PartStore(65_536, 'ingest')).length, 2);
    assert.equal(encodeJob(newJob(undefined, Buffer.alloc(100_000), 3), new PartStore(0, 'ingest')).length, 2);
    assert.deepEqual(partFiles(dir.path).filter((f) => /^[23]\./.test(f)), []);
  });

  test('a missing, resized or foreign part is a SharedMemoryError (INTERNAL), not a crash', () => {
    const job = decodeJob(encodeJob(newJob(dir.path, Buffer.alloc(70_000, 1), 4), new PartStore(0, 'ingest')));
    dir.release(4, ['4.image.ingest']);
    assert.throws(() => loadParts(job), (err: unknown) => err instanceof SharedMemoryError && err.code === 'INTERNAL' && /gone/.test(err.message));

    writeFileSync(`${dir.path}/5.image.ingest`, Buffer.alloc(10));
    assert.throws(() => readPart(dir.path, 5, { file: '5.image.ingest', size: 11 }), /has 10 bytes, the header says 11/);
    assert.throws(() => readPart(dir.path, 5, { file: '../../../etc/passwd', size: 10 }), /not a part file of this job/);
    assert.throws(() => readPart(dir.path, 5, { file: '4.image.ingest', size: 10 }), /not a part file of this job/);
    assert.throws(() => readPart('/etc', 5, { file: '5.image.ingest', size: 10 }), /not a framepipe shared-memory directory/);
    assert.throws(() => readPart(`${SHARED_BASE}/framepipe-1-0000000a/../..`, 5, { file: '5.image.ingest', size: 10 }), /not a framepipe/);
    // A symlink planted in the world-writable /dev/shm is not a directory of ours.
    const planted = `${SHARED_BASE}/framepipe-1-0badcafe`;
    rmSync(planted, { force: true });
    symlinkSync(dir.path, planted);
    try {
      assert.throws(() => readPart(planted, 5, { file: '5.image.ingest', size: 10 }), /not a framepipe shared-memory directory/);
    } finally {
      rmSync(planted, { force: true });
    }
  });

  test('a job that cannot be sent on (its shared part is gone) fails with INTERNAL instead of vanishing', () => {
    const job = decodeJob(encodeJob(newJob(dir.path, Buffer.alloc(70_000, 1), 7), new PartStore(0, 'ingest')));
    dir.release(7, ['7.image.ingest']);
    const frames = encodeOrFail(job);
    assert.equal(frames.length, 1);
    const failed = decodeJob(frames);
    assert.equal(failed.meta.error?.code, 'INTERNAL');
    assert.match(failed.meta.error!.message, /gone/);
  });

  test('a header with bad shared names is malformed (dropped like any malformed job)', () => {
    const bad = (extra: Record<string, unknown>) => encodeJob({ meta: { ...newJob(dir.path, Buffer.alloc(0), 8).meta, ...extra } as never });
    for (const extra of [{ written: 'x' }, { written: ['../../x'] }, { written: ['9.image.ingest'] }]) {
      assert.throws(() => decodeJob(bad(extra)), /written/, JSON.stringify(extra));
    }
    const withShared = (shared: unknown) => {
      const meta = newJob(dir.path, Buffer.alloc(0), 8).meta as unknown as Record<string, unknown>;
      meta.shared = shared;
      meta.parts = [];
      return [packMeta(meta)];
    };
    for (const shared of [{ image: 5 }, { image: { file: '/etc/passwd', size: 1 } }, { other: { file: '8.image.ingest', size: 1 } }]) {
      assert.throws(() => decodeJob(withShared(shared)), /bad shared part/, JSON.stringify(shared));
    }
  });

  test('results name only this job’s part files, whatever the wire says (ingest deletes files by them)', () => {
    const frames = encodeResult({ job: 9, ok: true, shared: ['9.image.ingest', '../../etc/passwd', '8.image.ingest', '9.pixels.detect'] }, Buffer.from('r'));
    assert.deepEqual(decodeResult(frames).meta.shared, ['9.image.ingest', '9.pixels.detect']);
  });

  test('only this host is local', () => {
    for (const ep of ['tcp://127.0.0.1:5556', 'tcp://localhost:1', 'tcp://[::1]:9', 'ipc:///tmp/x', 'inproc://a', 'tcp://127.8.0.2:1']) assert.ok(isLocalEndpoint(ep), ep);
    for (const ep of ['tcp://10.0.0.5:5556', 'tcp://0.0.0.0:1', 'tcp://example.com:1', 'tcp://*:5']) assert.ok(!isLocalEndpoint(ep), ep);
  });
});

describe('shared memory between real stage processes (noop profile, 100 KB JPEG)', { skip }, () => {
  let pipe: TestPipeline;
  let image: Buffer;
  let shm: string;
  const orphan = `${SHARED_BASE}/framepipe-999999999-0badf00d`;
  const foreign = `${SHARED_BASE}/framepipe-999999998-0badf00d`;

  before(async () => {
    image = await noiseJpeg(390);
    assert.ok(image.length > 65_536, `test image ${image.length} bytes is above shared_memory_min_bytes`);
    // Left by an ingest that was killed: the next ingest on this host removes it.
    mkdirSync(orphan, { recursive: true });
    writeFileSync(`${orphan}/owner`, `${os.hostname()}\n${readlinkSync('/proc/self/ns/pid')}`);
    writeFileSync(`${orphan}/1.image.ingest`, 'x');
    // The same, made in another pid namespace of this host (a container sharing /dev/shm): not ours to remove.
    mkdirSync(foreign, { recursive: true });
    writeFileSync(`${foreign}/owner`, `${os.hostname()}\npid:[1]`);
    pipe = await startPipeline('noop', [`detect.model.delay_ms=${DETECT_MS}`, 'detect.concurrency=4', 'limits.max_timeout_ms=60000']);
    shm = String(pipe.procs.find((p) => p.stage === 'ingest')!.facts.shared_memory);
  });
  after(async () => {
    await pipe?.stop();
    rmSync(foreign, { recursive: true, force: true });
  });

  test('auto on loopback: ingest has its directory, detect and classify pass parts by name; an orphan is gone', () => {
    assert.match(shm, /^\/dev\/shm\/framepipe-\d+-[0-9a-f]{8}$/);
    assert.ok(statSync(shm).isDirectory());
    for (const stage of ['detect', 'classify']) assert.equal(pipe.procs.find((p) => p.stage === stage)!.facts.shared_memory, true, stage);
    assert.equal(existsSync(orphan), false, 'the dead ingest’s directory was removed');
    assert.equal(existsSync(foreign), true, 'another host’s directory was left alone');
  });

  test('the image waits in shared memory while its job is in flight, and is deleted with the reply', async () => {
    let answered = false;
    const reply = reqOnce(pipe.endpoint, [header({ v: 1, id: 'in-flight' }), image]).finally(() => {
      answered = true;
    });
    // One file while detect works (it holds the job DETECT_MS): however late the request reaches ingest.
    const file = await oneFullPart(shm, image.length);
    assert.match(file, /^\d+\.image\.ingest$/, 'ingest’s own file (written before detect has the job)');
    assert.equal(answered, false, 'seen while the job is in flight');
    assert.equal(statSync(`${shm}/${file}`).size, image.length, 'the client’s bytes, unchanged');
    const r = await reply;
    assert.equal(r.ok, true);
    assert.deepEqual(partFiles(shm), [], 'deleted when answered');
  });

  test('annotate: the sink reads the image from shared memory and draws on it', async () => {
    const r = await reqOnce(pipe.endpoint, [header({ v: 1, id: 'drawn', annotate: true }), image]);
    assert.equal(r.ok, true);
    assert.ok(r.ok && r.annotated instanceof Uint8Array);
    const meta = await sharp(Buffer.from(r.annotated)).metadata();
    assert.deepEqual([meta.width, meta.height], [390, 390]);
    assert.deepEqual(partFiles(shm), []);
  });

  test('many at once: each gets its one reply, nothing is left behind', async () => {
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => reqOnce(pipe.endpoint, [header({ v: 1, id: i }), image])));
    assert.deepEqual(replies.map((r) => [r.id, r.ok]), Array.from({ length: 12 }, (_, i) => [i, true]));
    assert.deepEqual(partFiles(shm), []);
  });

  test('a request answered TIMEOUT before detect is done: its file goes at the timeout', async () => {
    const r = await reqOnce(pipe.endpoint, [header({ v: 1, id: 'late', timeout_ms: 100 }), image]);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error.code, 'TIMEOUT');
    assert.deepEqual(partFiles(shm), [], 'released at the timeout, not when the late result comes');
    // Past the time the late result comes back from detect.
    await new Promise((r) => setTimeout(r, DETECT_MS + 300));
    assert.deepEqual(partFiles(shm), []);
  });

  test('ingest removes its directory when it stops', async () => {
    await pipe.stop();
    assert.equal(existsSync(shm), false);
  });
});

describe('transport.shared_memory=off', { skip }, () => {
  let pipe: TestPipeline;
  let image: Buffer;
  const files = new ClientFiles();
  before(async () => {
    image = await noiseJpeg(390);
    pipe = await startPipeline('noop', ['transport.shared_memory=off', 'classify.model.decode=true']);
  });
  after(async () => {
    await pipe?.stop();
    files.close();
  });

  test('no directory, the image rides as a frame, and the reply is the same', async () => {
    assert.equal(pipe.procs.find((p) => p.stage === 'ingest')!.facts.shared_memory, false);
    assert.equal(pipe.procs.find((p) => p.stage === 'detect')!.facts.shared_memory, false);
    const r = await reqOnce(pipe.endpoint, [header({ v: 1, id: 'x' }), image]);
    assert.equal(r.ok, true);
    assert.deepEqual(r.ok && [r.width, r.height], [390, 390], 'classify decoded the bytes it was sent');
  });

  test('a client file (header shm): ingest reads it, sends the bytes on as a frame, and deletes it', async () => {
    const name = files.write(image)!;
    const r = await reqOnce(pipe.endpoint, [header({ id: 'read', shm: name })]);
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.deepEqual(r.ok && [r.width, r.height], [390, 390]);
    assert.equal(existsSync(`${SHARED_BASE}/${name}`), false);
  });
});

describe('a shared part that is not there (what a stage on another host meets)', { skip }, () => {
  test('the job fails with a clear INTERNAL error; the stage lives on', async () => {
    const image = await noiseJpeg(390);
    // classify decodes, so it must read the image; deleting ingest's file while detect holds
    // the job leaves classify where a stage on another host would be.
    const pipe = await startPipeline('noop', ['classify.model.decode=true', `detect.model.delay_ms=${DETECT_MS}`]);
    try {
      const shm = String(pipe.procs.find((p) => p.stage === 'ingest')!.facts.shared_memory);
      const reply = reqOnce(pipe.endpoint, [header({ v: 1, id: 'lost' }), image]);
      // Deleted as soon as ingest has written it: detect holds the job DETECT_MS, classify reads after.
      rmSync(`${shm}/${await oneFullPart(shm, image.length)}`);
      const r = await reply;
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.error.code, 'INTERNAL');
      assert.match(!r.ok ? r.error.message : '', /shared .*image.* it is gone: .*another host/);
      const again = await reqOnce(pipe.endpoint, [header({ v: 1, id: 'after' }), image]);
      assert.equal(again.ok, true, 'the stage goes on');
    } finally {
      await pipe.stop();
    }
  });
});

describe('shared memory in the OCR profile: detect writes the decoded pixels, ingest deletes them too', { skip }, () => {
  let pipe: TestPipeline;
  let shm: string;
  const receipt = readFileSync(path.join(repoRoot, 'samples', 'receipt.png'));

  before(async () => {
    pipe = await startPipeline('ocr', ['log.level=warn']);
    shm = String(pipe.procs.find((p) => p.stage === 'ingest')!.facts.shared_memory);
  });
  after(async () => {
    await pipe?.stop();
  });

  test('a read page: the pixels went through /dev/shm, and no file is left once it is answered', async () => {
    const reply = reqOnce(pipe.endpoint, [header({ v: 1, id: 'page' }), receipt], 30_000);
    // While classify reads, detect's decoded pixels wait in shared memory.
    let seen: string[] = [];
    const until = Date.now() + 20_000;
    while (Date.now() < until && !seen.some((f) => f.endsWith('.pixels.detect'))) {
      seen = partFiles(shm);
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.ok(seen.some((f) => f.endsWith('.pixels.detect')), `detect's pixels in ${shm}: ${seen.join(', ')}`);
    const r = await reply;
    assert.equal(r.ok, true);
    assert.ok(r.ok && r.detections.some((d) => d.text === 'Total'));
    assert.deepEqual(partFiles(shm), []);
  });

  test('a page answered TIMEOUT in the pipeline: detect’s file goes with the late result or with the stage that drops the job, not the 10-s sweep', async () => {
    const r = await reqOnce(pipe.endpoint, [header({ v: 1, id: 'late-page', timeout_ms: 60 }), receipt], 30_000);
    assert.equal(!r.ok && r.error.code, 'TIMEOUT');
    const until = Date.now() + 5_000;
    while (Date.now() < until && partFiles(shm).length > 0) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(partFiles(shm), [], 'gone within 5 s, well before the 10-s sweep');
  });
});
