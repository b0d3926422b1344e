// Clients on ingest's host hand the image over as a file in /dev/shm (request header `shm`):
// real stage processes take it over by name, read it where pixels are needed, delete it with
// the reply, and refuse — with a clear BAD_REQUEST, never a crash — any name that is not a
// client file of ingest's own user.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import sharp from 'sharp';
import { noiseJpeg } from '../bench/lib.js';
import { Client } from '../src/client/client.js';
import { ClientFiles, SHARED_BASE, sharedMemoryAvailable, sweepDeadClients } from '../src/transport/shared-parts.js';
import { createLogger } from '../src/log.js';
import { header, reqOnce, startPipeline, waitFor, type TestPipeline } from './helpers.js';
import { freeMetricsBase, getText, sample } from './metrics-helpers.js';

const skip = sharedMemoryAvailable() ? false : `${SHARED_BASE} is not a writable directory here`;

/** This process's client directories in /dev/shm. */
const ourClientDirs = () => readdirSync(SHARED_BASE).filter((f) => f.startsWith(`framepipe-client-${process.pid}-`));
/** Client files as a client writes them: a private directory of this process, a random name in it. */
const files = new ClientFiles();
const writeClientFile = (bytes: Buffer): string => files.write(bytes)!;
after(() => files.close());
const partFiles = (dir: string) => readdirSync(dir).filter((f) => f !== 'owner');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * How long detect holds each job: the window in which a test looks at a job's files while it is
 * in flight. Wide, so that however late a request reaches ingest on a loaded machine, it is seen.
 */
const DETECT_MS = 1500;

function errorOf(r: Awaited<ReturnType<typeof reqOnce>>): { code: string; message: string } {
  assert.equal(r.ok, false, JSON.stringify(r));
  return r.ok ? { code: '', message: '' } : r.error;
}

describe('images from client files in /dev/shm (noop profile, classify decodes)', { skip }, () => {
  let pipe: TestPipeline;
  let jpeg: Buffer;
  let shm: string;
  let metricsBase: number;

  before(async () => {
    jpeg = await noiseJpeg(390);
    metricsBase = await freeMetricsBase();
    // classify decodes what it is given, so a reply's size proves the bytes arrived intact;
    // detect's delay keeps a job in flight long enough to look at the files.
    // (8 at once: the TS client's window, so its 24 requests take 3 holds, not 6.)
    pipe = await startPipeline('noop', ['classify.model.decode=true', `detect.model.delay_ms=${DETECT_MS}`, 'detect.concurrency=8', 'limits.max_message_bytes=300000', `metrics.port=${metricsBase}`]);
    shm = String(pipe.procs.find((p) => p.stage === 'ingest')!.facts.shared_memory);
  });
  after(async () => {
    await pipe?.stop();
    files.close();
    for (const f of ourClientDirs()) rmSync(`${SHARED_BASE}/${f}`, { recursive: true, force: true });
  });

  test('a JPEG by name: ingest moves the file into its directory, classify reads it, the reply deletes it', async () => {
    const name = writeClientFile(jpeg);
    let answered = false;
    const reply = reqOnce(pipe.endpoint, [header({ id: 'by-name', shm: name })]).finally(() => {
      answered = true;
    });
    // However late the request reaches ingest: detect holds the job DETECT_MS once it is in.
    await waitFor('ingest takes the file over (the client’s name gone)', () => !existsSync(`${SHARED_BASE}/${name}`));
    assert.equal(answered, false, 'seen while the job is in flight');
    assert.equal(existsSync(`${SHARED_BASE}/${name}`), false, 'the client’s name is gone: ingest took the file');
    const inFlight = partFiles(shm);
    assert.equal(inFlight.length, 1, inFlight.join(', '));
    assert.match(inFlight[0]!, /^\d+\.image\.ingest$/);
    const r = await reply;
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.deepEqual(r.ok && [r.width, r.height], [390, 390]);
    assert.deepEqual(partFiles(shm), [], 'deleted with the reply');
  });

  test('raw BGR pixels by name, with shape', async () => {
    const { data, info } = await sharp(jpeg).resize(200, 150).raw().toBuffer({ resolveWithObject: true });
    const name = writeClientFile(data);
    const r = await reqOnce(pipe.endpoint, [header({ id: 'raw', shm: name, shape: [info.height, info.width, 3], dtype: 'uint8' })]);
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.deepEqual(r.ok && [r.width, r.height], [200, 150]);
    assert.equal(existsSync(`${SHARED_BASE}/${name}`), false);
    assert.deepEqual(partFiles(shm), []);
  });

  test('the TS client with sharedMemory: many in flight, each its own reply, no file left on either side', async () => {
    const before = ourClientDirs();
    const client = new Client(pipe.endpoint, { sharedMemory: true, window: 8, timeoutMs: 20_000 });
    try {
      const replies = await Promise.all(Array.from({ length: 24 }, () => client.infer(jpeg)));
      assert.ok(replies.every((r) => r.ok && r.width === 390), JSON.stringify(replies.find((r) => !r.ok)));
      const mine = ourClientDirs().filter((d) => !before.includes(d));
      assert.equal(mine.length, 1, 'the client made its private directory');
      assert.deepEqual(readdirSync(`${SHARED_BASE}/${mine[0]}`), ['owner'], 'every file taken over by ingest; only the host name is left');
      assert.equal(readFileSync(`${SHARED_BASE}/${mine[0]}/owner`, 'utf8'), `${hostname()}\n${readlinkSync('/proc/self/ns/pid')}`, 'host name and pid namespace');
    } finally {
      await client.close();
    }
    assert.deepEqual(ourClientDirs(), before, 'close() removed the directory');
    assert.deepEqual(partFiles(shm), []);
  });

  test('bad names and bad files get BAD_REQUEST naming the problem, and are left as they are', async () => {
    const cases: [string, Record<string, unknown>, Buffer[], RegExp][] = [];
    const dir = writeClientFile(jpeg).split('/')[0]!;
    cases.push(['a path', { shm: '../etc/passwd' }, [], /is not a client file name/]);
    cases.push(['a path inside', { shm: `${dir}/../../etc/passwd` }, [], /is not a client file name/]);
    cases.push(['another program’s file', { shm: 'PostgreSQL.1234' }, [], /is not a client file name/]);
    cases.push(['a missing file', { shm: `${dir}/missing` }, [], /does not exist on ingest's host .*frame 2/]);
    // A name every client directory of ours has: taking it would stop the sweep of that directory.
    cases.push(['the directory’s owner file', { shm: `${dir}/owner` }, [], /is not a client file name .*other than owner/]);
    const open = `framepipe-client-${process.pid}-open`;
    mkdirSync(`${SHARED_BASE}/${open}`, { mode: 0o755 });
    chmodSync(`${SHARED_BASE}/${open}`, 0o755);
    writeFileSync(`${SHARED_BASE}/${open}/a`, jpeg);
    cases.push(['a directory others can list', { shm: `${open}/a` }, [], /must be a private directory/]);
    const linkedDir = `framepipe-client-${process.pid}-linked`;
    symlinkSync(`${SHARED_BASE}/${dir}`, `${SHARED_BASE}/${linkedDir}`);
    const inLinkedDir = writeClientFile(jpeg).split('/')[1]!;
    cases.push(['a symlinked directory', { shm: `${linkedDir}/${inLinkedDir}` }, [], /must be a private directory/]);
    symlinkSync('/etc/hostname', `${SHARED_BASE}/${dir}/link`);
    cases.push(['a symlink', { shm: `${dir}/link` }, [], /not a regular file/]);
    const linked = writeClientFile(jpeg);
    linkSync(`${SHARED_BASE}/${linked}`, `${SHARED_BASE}/${dir}/second-name`);
    cases.push(['a file with two names', { shm: linked }, [], /has 2 links/]);
    const empty = writeClientFile(Buffer.alloc(0));
    cases.push(['an empty file', { shm: empty }, [], /is empty/]);
    const big = writeClientFile(Buffer.alloc(310_000, 1));
    cases.push(['a file over max_message_bytes', { shm: big }, [], /with its image file; the limit is 300000/]);
    const twice = writeClientFile(jpeg);
    cases.push(['a file and frame 2', { shm: twice }, [jpeg], /image given twice/]);
    const shaped = writeClientFile(Buffer.alloc(1000));
    cases.push(['raw pixels of the wrong size', { shm: shaped, shape: [10, 10, 3] }, [], /needs 300 bytes of uint8, the image has 1000/]);
    cases.push(['not a string', { shm: 5 }, [], /header field 'shm'/]);
    const foreign = writeClientFile(jpeg);
    if (process.getuid?.() === 0) {
      chownSync(`${SHARED_BASE}/${foreign}`, 65534, 65534);
      cases.push(['another user’s file', { shm: foreign }, [], /not owned by the user ingest runs as/]);
    }
    const kept = [`${dir}/owner`, `${dir}/link`, linked, empty, big, twice, shaped, foreign, `${open}/a`, `${dir}/${inLinkedDir}`];
    try {
      for (const [what, fields, extra, message] of cases) {
        const r = await reqOnce(pipe.endpoint, [header({ id: what, ...fields }), ...extra]);
        const error = errorOf(r);
        assert.equal(r.id, what);
        assert.equal(error.code, what.includes('max_message_bytes') ? 'TOO_LARGE' : 'BAD_REQUEST', `${what}: ${error.message}`);
        assert.match(error.message, message, what);
      }
      for (const name of kept) assert.ok(existsSync(`${SHARED_BASE}/${name}`), `${name} left alone`);
      assert.ok(existsSync('/etc/hostname'));
      const r = await reqOnce(pipe.endpoint, [header({ id: 'after', shm: writeClientFile(jpeg) })]);
      assert.equal(r.ok, true, 'ingest goes on');
    } finally {
      for (const name of [...kept.filter((k) => k !== `${dir}/owner`), `${dir}/second-name`, linkedDir]) rmSync(`${SHARED_BASE}/${name}`, { force: true });
      rmSync(`${SHARED_BASE}/${open}`, { recursive: true, force: true });
    }
  });

  test('latest-frame mode: a SKIPPED frame’s file stays the client’s; a boxed frame whose file vanished gets BAD_REQUEST', async () => {
    const stream = `cam-${process.pid}`;
    const names = [writeClientFile(jpeg), writeClientFile(jpeg), writeClientFile(jpeg)];
    const send = (i: number) => reqOnce(pipe.endpoint, [header({ id: i, stream, frame: i, latest: true, shm: names[i] })]);
    // Frame 0 goes in (detect holds it DETECT_MS); 1 waits in the stream's box; 2 replaces it.
    const first = send(0);
    await waitFor('frame 0 taken in', () => !existsSync(`${SHARED_BASE}/${names[0]}`));
    const second = send(1);
    // Frame 1 held in the box (ingest counts it in flight) before frame 2 comes to replace it.
    const held = async () => sample((await getText(`http://127.0.0.1:${metricsBase}/metrics`)).body, 'framepipe_requests_in_flight{stage="ingest"}') ?? 0;
    await waitFor('frame 1 held in the box', async () => (await held()) >= 2);
    const third = send(2);
    const skipped = await second;
    assert.equal(!skipped.ok && skipped.error.code, 'SKIPPED');
    assert.ok(existsSync(`${SHARED_BASE}/${names[1]}`), 'never entered the pipeline: still the client’s file');
    // Frame 2 waits in the box until frame 0 is answered; its file vanishing meanwhile is its own error.
    rmSync(`${SHARED_BASE}/${names[2]}`);
    assert.equal((await first).ok, true);
    const gone = errorOf(await third);
    assert.equal(gone.code, 'BAD_REQUEST');
    assert.match(gone.message, /went away before ingest took it/);
    rmSync(`${SHARED_BASE}/${names[1]}`);
    const r = await reqOnce(pipe.endpoint, [header({ id: 'next', stream, latest: true, shm: writeClientFile(jpeg) })]);
    assert.equal(r.ok, true, 'the stream goes on');
    assert.deepEqual(partFiles(shm), []);
  });

  test("ingest's metrics count the files it took over: 1 + 1 + 24 + 1 + 2 above, none of the refused", async () => {
    const text = (await getText(`http://127.0.0.1:${metricsBase}/metrics`)).body;
    assert.equal(sample(text, 'framepipe_client_files_total{stage="ingest"}'), 29);
  });
});

describe('transport.client_shared_memory=false', { skip }, () => {
  test('a request naming a file gets BAD_REQUEST and the file stays; the TS client’s own file goes with close()', async () => {
    const pipe = await startPipeline('noop', ['transport.client_shared_memory=false']);
    const jpeg = await noiseJpeg(64);
    const name = writeClientFile(jpeg);
    const before = ourClientDirs();
    const client = new Client(pipe.endpoint, { sharedMemory: true, timeoutMs: 10_000 });
    try {
      const error = errorOf(await reqOnce(pipe.endpoint, [header({ id: 'off', shm: name })]));
      assert.equal(error.code, 'BAD_REQUEST');
      assert.match(error.message, /takes no images from shared memory .*frame 2/);
      assert.ok(existsSync(`${SHARED_BASE}/${name}`));
      // The client really sends names (here refused), and removes the files ingest did not take.
      const r = await client.infer(jpeg);
      assert.equal(!r.ok && r.error.code, 'BAD_REQUEST');
      const mine = ourClientDirs().filter((d) => !before.includes(d));
      assert.deepEqual(mine.map((d) => partFiles(`${SHARED_BASE}/${d}`)), [[]], 'its refused file removed after the reply');
    } finally {
      await client.close();
      await pipe.stop();
    }
    assert.deepEqual(ourClientDirs(), before);
  });
});

describe('ClientFiles names (no pipeline)', { skip }, () => {
  test('file names are 96 random bits each, and a name already taken is neither used nor removed', () => {
    const a = new ClientFiles();
    try {
      const names = Array.from({ length: 300 }, (_, i) => a.write(Buffer.from(String(i)))!);
      // Anyone can list /dev/shm and see the directory; the file name is the secret, and one
      // seen (in a log, an error message) says nothing of the next: no shared prefix, no counter.
      const files = names.map((n) => n.split('/')[1]!);
      for (const f of files) assert.match(f, /^[0-9a-f]{24}$/);
      assert.equal(new Set(files).size, files.length);
      // A shared token + counter would give every pair a long common prefix; 300 random names
      // share 8 leading hex digits with odds of about 1 in 100,000.
      const sorted = [...files].sort();
      for (let i = 1; i < sorted.length; i++) assert.notEqual(sorted[i]!.slice(0, 8), sorted[i - 1]!.slice(0, 8));
      const dir = names[0]!.split('/')[0]!;
      // A name that is already someone's file: random names never collide in practice, so the
      // draw is made to return one; 'wx' must refuse it and the file must stay.
      writeFileSync(`${SHARED_BASE}/${dir}/theirs`, 'theirs', { mode: 0o600 });
      const fakeDraw = a as unknown as { randomName: () => string };
      const real = fakeDraw.randomName;
      fakeDraw.randomName = () => 'theirs';
      assert.equal(a.write(Buffer.from('mine')), undefined);
      fakeDraw.randomName = real;
      assert.equal(readFileSync(`${SHARED_BASE}/${dir}/theirs`, 'utf8'), 'theirs');
      assert.ok(existsSync(`${SHARED_BASE}/${dir}/owner`));
    } finally {
      a.close();
    }
  });
});

describe('directories of clients that died before close()', { skip }, () => {
  const clientCode = `import { ClientFiles } from ${JSON.stringify(new URL('../src/transport/shared-parts.ts', import.meta.url).pathname)};
    const name = new ClientFiles().write(Buffer.alloc(5000, 1)); console.log(name); setInterval(() => {}, 1000);`;
  /** Starts a real client process (`argv` before node's) that writes one image with ClientFiles, as the TS client does; resolves with its file's name. */
  async function clientProcess(wrap: string[] = []): Promise<{ dir: string; child: ReturnType<typeof spawn> }> {
    const argv = [...wrap, process.execPath, '--import', 'tsx', '--input-type=module', '-e', clientCode];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    const name = await new Promise<string>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
      child.once('exit', (code) => reject(new Error(`client exited (${code}) before writing`)));
    });
    return { dir: name.split('/')[0]!, child };
  }
  /** A client killed before close(): its directory, with its image in it, is left behind. */
  async function killedClient(): Promise<{ dir: string; pid: number }> {
    const { dir, child } = await clientProcess();
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    return { dir, pid: child.pid! };
  }
  const exists = (dir: string) => existsSync(`${SHARED_BASE}/${dir}`);
  const silent = createLogger('ingest', 'silent');

  test("ingest's sweep removes a dead client's directory, image and all, and leaves every other directory alone", async () => {
    const dead = await killedClient();
    assert.ok(exists(dead.dir), 'the killed client left its directory');
    assert.match(dead.dir, new RegExp(`^framepipe-client-${dead.pid}-`));
    assert.equal(partFiles(`${SHARED_BASE}/${dead.dir}`).length, 1, 'with its image in it');
    const tag = readFileSync(`${SHARED_BASE}/${dead.dir}/owner`, 'utf8');
    // What must stay: a live client's directory; a dead pid's directory without `owner` (a
    // by-hand client, or one being made), with another host's name, or another pid namespace's;
    // a symlink of that name to a directory that looks dead; one whose `owner` is a FIFO.
    const live = new ClientFiles();
    const liveDir = live.write(Buffer.from('x'))!.split('/')[0]!;
    const made = (owner?: string) => {
      const d = mkdtempSync(`${SHARED_BASE}/framepipe-client-${dead.pid}-`);
      if (owner !== undefined) writeFileSync(`${d}/owner`, owner);
      return d.split('/').pop()!;
    };
    const noOwner = made();
    const otherHost = made(`not-${tag}`);
    const otherNamespace = made(`${hostname()}\npid:[1]`);
    const linked = `framepipe-client-${dead.pid}-symlink`;
    const lookalike = mkdtempSync('/tmp/framepipe-lookalike-');
    writeFileSync(`${lookalike}/owner`, tag);
    writeFileSync(`${lookalike}/precious`, 'x');
    symlinkSync(lookalike, `${SHARED_BASE}/${linked}`);
    const fifo = made();
    execFileSync('mkfifo', [`${SHARED_BASE}/${fifo}/owner`]);
    const kept = [liveDir, noOwner, otherHost, otherNamespace, linked, fifo];
    const stop = sweepDeadClients(100, silent);
    try {
      assert.equal(exists(dead.dir), false, 'removed at once when the sweep starts');
      // One more that dies while the sweep runs: the next round takes it.
      const later = await killedClient();
      const t0 = Date.now();
      while (exists(later.dir) && Date.now() - t0 < 3000) await sleep(20);
      assert.equal(exists(later.dir), false, 'removed by a later round');
      for (const d of kept) assert.ok(exists(d), `${d} stays`);
      assert.ok(existsSync(`${lookalike}/precious`), 'nothing behind a symlink is touched');
    } finally {
      stop();
      live.close();
      for (const d of kept.slice(1)) rmSync(`${SHARED_BASE}/${d}`, { recursive: true, force: true });
      rmSync(lookalike, { recursive: true, force: true });
    }
  });

  test('a live client in another pid namespace under the same host name keeps its directory', { skip: process.getuid?.() === 0 ? false : 'needs root (unshare)' }, async () => {
    // Its pid in there (past 400: burn some) means another process, or none, out here.
    const { dir, child } = await clientProcess(['unshare', '-pf', '--kill-child', '--mount-proc', 'sh', '-c', 'for i in $(seq 400); do /bin/true; done; "$0" "$@"']);
    try {
      const pidInside = Number(/^framepipe-client-(\d+)-/.exec(dir)![1]);
      assert.ok(pidInside > 400 && pidInside !== child.pid, `pid ${pidInside} is its namespace's`);
      const stop = sweepDeadClients(60_000, silent);
      stop();
      assert.ok(exists(dir), 'not swept: its owner names another pid namespace');
    } finally {
      child.kill('SIGKILL');
      rmSync(`${SHARED_BASE}/${dir}`, { recursive: true, force: true });
    }
  });

  test('a running ingest removes them when it starts', async () => {
    const dead = await killedClient();
    const pipe = await startPipeline('noop');
    try {
      assert.equal(exists(dead.dir), false);
    } finally {
      await pipe.stop();
    }
  });
});
