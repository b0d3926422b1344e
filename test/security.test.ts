// CURVE on the clients endpoint: an allowed key gets replies, an unknown key and a plain client
// get nothing, and the image never crosses the wire in clear text (loopback capture with dumpcap).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { Client, ClientTimeoutError, type CurveClientOptions } from '../src/client/client.js';
import { ReqClient } from '../src/client/req-client.js';
import { readKeyFile, serverCurve, writeKeyPair } from '../src/security/keys.js';
import { loadConfig } from '../src/config/load.js';
import { fetchStatus } from '../src/cli/status.js';
import { z85Decode, z85Encode } from '../src/security/z85.js';
import { repoRoot, startPipeline, type TestPipeline } from './helpers.js';

/** 64 bytes no JPEG encoder writes, appended after the image's end marker (decoders ignore trailing bytes). */
const PATTERN = Buffer.from('FRAMEPIPE-CURVE-CANARY-'.repeat(3).slice(0, 64), 'latin1');

function keysOf(dir: string, name: string): { publicKey: string; secretKey: string } {
  const file = readKeyFile(path.join(dir, `${name}.secret`));
  return { publicKey: file.publicKeys[0]!, secretKey: file.secretKey! };
}

const hasDumpcap = spawnSync('dumpcap', ['-v'], { stdio: 'ignore' }).status === 0 && process.getuid?.() === 0;

/** Captures loopback traffic to `port` while `fn` runs; returns the capture file's bytes. */
async function capture(port: string, dir: string, fn: () => Promise<void>): Promise<Buffer> {
  const file = path.join(dir, `cap-${port}-${Date.now()}.pcapng`);
  const proc = spawn('dumpcap', ['-i', 'lo', '-f', `tcp port ${port}`, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      let err = '';
      proc.stderr.on('data', (d: Buffer) => {
        err += String(d);
        if (err.includes('Capturing on')) resolve();
      });
      proc.on('exit', (code) => reject(new Error(`dumpcap exited ${code}: ${err}`)));
      setTimeout(() => reject(new Error(`dumpcap did not start: ${err}`)), 5000).unref();
    });
    // "Capturing on" comes a moment before packets are really taken.
    await new Promise((r) => setTimeout(r, 500));
    await fn();
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGINT');
    await exited;
  }
  assert.ok(statSync(file).size > 0, 'capture written');
  return readFileSync(file);
}

describe('CURVE on the clients endpoint (noop profile, real processes)', () => {
  let pipe: TestPipeline;
  let dir: string;
  let image: Buffer;
  let server: string;
  let good: CurveClientOptions;
  let stranger: CurveClientOptions;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'framepipe-curve-'));
    server = writeKeyPair(dir, 'server').publicKey;
    writeKeyPair(dir, 'good');
    writeKeyPair(dir, 'stranger');
    assert.equal(statSync(path.join(dir, 'server.secret')).mode & 0o777, 0o600);
    const g = keysOf(dir, 'good');
    const s = keysOf(dir, 'stranger');
    good = { curveServerKey: server, curvePublicKey: g.publicKey, curveSecretKey: g.secretKey };
    stranger = { curveServerKey: server, curvePublicKey: s.publicKey, curveSecretKey: s.secretKey };
    const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#806040' } }).jpeg().toBuffer();
    image = Buffer.concat([jpeg, PATTERN]);
    pipe = await startPipeline('noop', [
      'security.curve=true',
      `security.server_secret_key=@${path.join(dir, 'server.secret')}`,
      `security.allowed_clients=@${path.join(dir, 'good.public')}`,
    ]);
  });
  after(async () => {
    await pipe?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('an allowed key gets replies (Client and ReqClient)', async () => {
    const client = new Client(pipe.endpoint, { timeoutMs: 5000, ...good });
    try {
      const reply = await client.infer(image, { stream: 'cam' });
      assert.equal(reply.ok, true);
      assert.equal(reply.stream, 'cam');
    } finally {
      await client.close();
    }
    const req = new ReqClient(pipe.endpoint, { timeoutMs: 5000, retries: 0, ...good });
    try {
      assert.equal((await req.infer(image)).ok, true);
    } finally {
      req.close();
    }
  });

  for (const [name, options] of [
    ['a key not in allowed_clients', () => stranger],
    ['a plain (non-CURVE) client', () => ({})],
  ] as const) {
    test(`${name} gets no reply`, async () => {
      const client = new Client(pipe.endpoint, { timeoutMs: 800, ...options() });
      try {
        await assert.rejects(client.infer(image), ClientTimeoutError);
      } finally {
        await client.close();
      }
    });
  }

  test('the image is not readable on the wire with CURVE on, and is with it off', { skip: hasDumpcap ? false : 'needs dumpcap (tshark) and root' }, async () => {
    const port = new URL(pipe.endpoint.replace('tcp://', 'http://')).port;
    const send = (endpoint: string, options: CurveClientOptions) => async () => {
      const client = new Client(endpoint, { timeoutMs: 5000, ...options });
      try {
        const reply = await client.infer(image);
        assert.equal(reply.ok, true, JSON.stringify(reply));
      } finally {
        await client.close();
      }
    };
    const encrypted = await capture(port, dir, send(pipe.endpoint, good));
    assert.ok(encrypted.length > 1000, 'the request was captured');
    assert.equal(encrypted.indexOf(PATTERN), -1, 'pattern must not appear in CURVE traffic');

    const plain = await startPipeline('noop');
    try {
      const plainPort = new URL(plain.endpoint.replace('tcp://', 'http://')).port;
      const clear = await capture(plainPort, dir, send(plain.endpoint, {}));
      assert.notEqual(clear.indexOf(PATTERN), -1, 'control: pattern visible without CURVE');
    } finally {
      await plain.stop();
    }
  });
});

describe('CURVE between stages (noop profile, real processes)', () => {
  let dir: string;
  let image: Buffer;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'framepipe-curve-stages-'));
    writeKeyPair(dir, 'pipeline');
    const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#406080' } }).jpeg().toBuffer();
    image = Buffer.concat([jpeg, PATTERN]);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  // shared_memory off: the image must cross the captured hop for its absence there to mean anything.
  const stageSets = () => ['security.stages=true', `security.stage_key_file=${path.join(dir, 'pipeline.secret')}`, 'transport.shared_memory=off'];

  test('direct mode: replies come back; the hop to detect carries no clear image', { skip: hasDumpcap ? false : 'needs dumpcap (tshark) and root' }, async () => {
    const pipe = await startPipeline('noop', stageSets());
    try {
      const detect = pipe.sets.filter((s) => s.startsWith('transport.detect=')).pop()!;
      const port = detect.slice(detect.lastIndexOf(':') + 1);
      const wire = await capture(port, dir, async () => {
        const client = new Client(pipe.endpoint, { timeoutMs: 5000 });
        try {
          const reply = await client.infer(image);
          assert.equal(reply.ok, true, JSON.stringify(reply));
        } finally {
          await client.close();
        }
      });
      assert.ok(wire.length > 1000, 'the hop was captured');
      assert.equal(wire.indexOf(PATTERN), -1, 'pattern must not appear on the detect hop');
    } finally {
      await pipe.stop();
    }
  });

  test('curve and stages together: one ZAP handler in ingest serves both domains', async () => {
    writeKeyPair(dir, 'server');
    writeKeyPair(dir, 'client');
    const pipe = await startPipeline('noop', [
      ...stageSets(),
      'security.curve=true',
      `security.server_secret_key=@${path.join(dir, 'server.secret')}`,
      `security.allowed_clients=@${path.join(dir, 'client.public')}`,
    ]);
    try {
      const c = keysOf(dir, 'client');
      const options = { curveServerKey: keysOf(dir, 'server').publicKey, curvePublicKey: c.publicKey, curveSecretKey: c.secretKey };
      const client = new Client(pipe.endpoint, { timeoutMs: 5000, ...options });
      try {
        const reply = await client.infer(image);
        assert.equal(reply.ok, true, JSON.stringify(reply));
      } finally {
        await client.close();
      }
      // The pipeline's own key is for stages, not for the clients endpoint.
      const p = keysOf(dir, 'pipeline');
      const stage = new Client(pipe.endpoint, { timeoutMs: 800, curveServerKey: options.curveServerKey, curvePublicKey: p.publicKey, curveSecretKey: p.secretKey });
      try {
        await assert.rejects(stage.infer(image), ClientTimeoutError);
      } finally {
        await stage.close();
      }
    } finally {
      await pipe.stop();
    }
  });

  test('broker mode: replies come back through the broker, and framepipe status gets in with the key', async () => {
    const pipe = await startPipeline('noop', ['transport.mode=broker', 'broker.heartbeat_ms=300', ...stageSets()]);
    try {
      const client = new Client(pipe.endpoint, { timeoutMs: 5000 });
      try {
        const reply = await client.infer(image);
        assert.equal(reply.ok, true, JSON.stringify(reply));
      } finally {
        await client.close();
      }
      const ingest = pipe.sets.filter((s) => s.startsWith('broker.ingest=')).pop()!.slice('broker.ingest='.length);
      const keys = keysOf(dir, 'pipeline');
      const status = await fetchStatus(ingest, 3000, keys);
      assert.ok(status.peers.length >= 4, JSON.stringify(status));
      await assert.rejects(fetchStatus(ingest, 800), /no answer/, 'without the key the broker does not answer');
    } finally {
      await pipe.stop();
    }
  });
});

test('framepipe keygen --out DIR --name NAME: public and 0600 secret files; never overwrites', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'framepipe-keygen-'));
  try {
    const run = () => spawnSync(process.execPath, [path.join(repoRoot, 'bin/framepipe.js'), 'keygen', '--out', dir, '--name', 'cam'], { encoding: 'utf8' });
    const first = run();
    assert.equal(first.status, 0, first.stderr);
    const secret = readKeyFile(path.join(dir, 'cam.secret'));
    assert.equal(statSync(path.join(dir, 'cam.secret')).mode & 0o777, 0o600);
    assert.deepEqual(readKeyFile(path.join(dir, 'cam.public')).publicKeys, secret.publicKeys);
    assert.match(first.stdout, new RegExp(`public key: ${secret.publicKeys[0]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    const second = run();
    assert.equal(second.status, 1);
    assert.match(second.stderr, /exists/);
    assert.deepEqual(readKeyFile(path.join(dir, 'cam.public')).publicKeys, secret.publicKeys, 'the pair is untouched');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('security settings', () => {
  // Starts with YAML punctuation: read as YAML it would be an anchor, not a key.
  const key = '&D5MY[{v3*=1hYFe#GeDU%]@tP#?Ck227^C2QNhR';

  test('Z85 round trip (RFC 32 test vector)', () => {
    const bytes = Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
    assert.equal(z85Encode(bytes), 'HelloWorld');
    assert.deepEqual(z85Decode('HelloWorld'), bytes);
  });

  test('keys from the environment and --set stay text; a comma list of allowed clients works', () => {
    const config = loadConfig({
      env: { FRAMEPIPE_SECURITY__SERVER_SECRET_KEY: key, FRAMEPIPE_SECURITY__CURVE: 'true' },
      sets: [`security.allowed_clients=${key},${key}`],
      profile: 'noop',
    });
    assert.equal(config.security.curve, true);
    assert.equal(config.security.server_secret_key, key);
    const curve = serverCurve(config.security);
    assert.equal(curve?.secretKey, key);
    assert.equal(curve?.allowed.length, 2);
    assert.equal(curve?.allowed[0]?.length, 32);
  });

  test('off by default; on without a secret key, or with a bad key, is refused naming the key', () => {
    assert.equal(serverCurve(loadConfig({ env: {}, profile: 'noop' }).security), undefined);
    const refused = (sets: string[], message: RegExp) =>
      assert.throws(() => serverCurve(loadConfig({ env: {}, profile: 'noop', sets: ['security.curve=true', ...sets] }).security), message);
    refused([], /security\.server_secret_key: required/);
    refused(['security.server_secret_key=short'], /security\.server_secret_key: not a CURVE key/);
    refused([`security.server_secret_key=${key}`, 'security.allowed_clients=nope'], /security\.allowed_clients/);
    refused(['security.server_secret_key=@/nonexistent/server.secret'], /cannot read key file/);
  });
});
