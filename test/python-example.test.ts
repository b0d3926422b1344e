// The Python example of docs/protocol.md, run with Debian's python3-zmq and python3-msgpack
// against a live pipeline: the protocol is a contract for programs we did not write.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { repoRoot, startPipeline, type TestPipeline } from './helpers.js';

const run = promisify(execFile);
const python = '/usr/bin/python3';

async function pythonHasZmq(): Promise<boolean> {
  if (!existsSync(python)) return false;
  try {
    await run(python, ['-c', 'import zmq, msgpack']);
    return true;
  } catch {
    return false;
  }
}

describe('Python example (pyzmq + msgpack only)', async () => {
  const available = await pythonHasZmq();
  let pipe: TestPipeline;
  let image: string;
  before(async () => {
    if (!available) return;
    pipe = await startPipeline('noop', ['detect.model.decode=true']);
    image = path.join(mkdtempSync(path.join(tmpdir(), 'fp-py-')), 'frame.png');
    writeFileSync(image, await sharp({ create: { width: 64, height: 40, channels: 3, background: '#c0ffee' } }).png().toBuffer());
  });
  after(async () => {
    await pipe?.stop();
  });

  test('examples/python/infer_once.py gets a reply it can read', { skip: available ? false : 'SKIPPED: /usr/bin/python3 with python3-zmq and python3-msgpack is not installed (apt-get install python3-zmq python3-msgpack)' }, async () => {
    const { stdout } = await run(python, [path.join(repoRoot, 'examples/python/infer_once.py'), image, pipe.endpoint], { timeout: 30_000 });
    assert.match(stdout, /frame\.png: 64x40, 0 detection\(s\)/);
  });

  test('a bad image gets a readable error reply in Python', { skip: available ? false : 'SKIPPED: python3-zmq missing' }, async () => {
    const bad = path.join(path.dirname(image), 'bad.jpg');
    writeFileSync(bad, Buffer.from('definitely not a jpeg'));
    await assert.rejects(run(python, [path.join(repoRoot, 'examples/python/infer_once.py'), bad, pipe.endpoint], { timeout: 30_000 }), (err: { stdout: string }) => {
      assert.match(err.stdout, /error BAD_IMAGE: /);
      return true;
    });
  });
});
