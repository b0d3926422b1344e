// The default profile end to end: real PP-OCRv4 models in four real processes, on the sample
// images the project renders itself (samples/, made by scripts/make-samples.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { distance } from 'fastest-levenshtein';
import { expandImages } from '../src/cli/files.js';
import type { Reply } from '../src/protocol/types.js';
import { header, repoRoot, reqOnce, startPipeline, type TestPipeline } from './helpers.js';

const samplesDir = path.join(repoRoot, 'samples');
const expected = JSON.parse(readFileSync(path.join(samplesDir, 'expected.json'), 'utf8')) as Record<string, string[]>;

function lines(reply: Reply): string[] {
  assert.equal(reply.ok, true, JSON.stringify(reply));
  return reply.ok ? reply.detections.map((d) => d.text ?? '') : [];
}

describe('OCR profile through the pipeline', () => {
  let pipe: TestPipeline;
  const read = new Map<string, string[]>();
  before(async () => {
    pipe = await startPipeline('ocr');
    for (const file of expandImages([samplesDir])) {
      read.set(path.basename(file), lines(await reqOnce(pipe.endpoint, [header({ id: file }), readFileSync(file)], 60_000)));
    }
  });
  after(async () => {
    await pipe?.stop();
  });

  test('every sample is read with ≥ 98% character accuracy overall', () => {
    let errors = 0;
    let chars = 0;
    for (const [name, want] of Object.entries(expected)) {
      const got = read.get(name);
      assert.ok(got, `${name} was sent`);
      const d = distance(got.join('\n'), want.join('\n'));
      console.log(`${name}: ${d} edit(s) — read ${JSON.stringify(got)}`);
      errors += d;
      chars += want.join('\n').length;
    }
    const accuracy = 1 - errors / chars;
    console.log(`character accuracy through the pipeline: ${(accuracy * 100).toFixed(2)}% (${errors} edits in ${chars} characters)`);
    assert.ok(accuracy >= 0.98, `accuracy ${accuracy}`);
  });

  test('classify reports its recognizer batch sizes on /metrics', async () => {
    const classify = pipe.procs.find((p) => p.stage === 'classify')!;
    const text = await (await fetch(String(classify.facts.metrics))).text();
    const count = /framepipe_batch_size_count\{[^}]*model="ocr-rec"[^}]*\} (\d+)/.exec(text);
    assert.ok(count && Number(count[1]) > 0, 'ocr-rec batches observed');
  });

  test('words keep their spaces', () => {
    assert.deepEqual(read.get('gate-sign.jpg'), ['Gate 12 now boarding']);
  });

  test('an upside-down line is read the right way round, and the upright one is not flipped', () => {
    assert.deepEqual(read.get('upside-down.png'), expected['upside-down.png']);
  });

  test('regions come in reading order with polygons, boxes and scores', async () => {
    const reply = await reqOnce(pipe.endpoint, [header({ id: 'p' }), readFileSync(path.join(samplesDir, 'paragraph.png'))], 60_000);
    assert.equal(reply.ok, true);
    if (!reply.ok) return;
    const ys = reply.detections.map((d) => d.box[1]);
    assert.deepEqual(ys, [...ys].sort((a, b) => a - b), 'top to bottom');
    for (const d of reply.detections) {
      assert.equal(d.label, 'text');
      assert.equal(d.polygon?.length, 4);
      assert.ok(d.score > 0 && d.score <= 1 && d.text_score! > 0.5);
      assert.ok(d.box[0] < d.box[2] && d.box[1] < d.box[3]);
    }
    assert.ok(reply.timings_ms.detect! > 0 && reply.timings_ms.classify! > 0 && reply.timings_ms.total! > 0);
  });

  test('a truncated JPEG and random bytes get BAD_IMAGE; the stages keep serving', async () => {
    const jpg = readFileSync(path.join(samplesDir, 'gate-sign.jpg'));
    for (const bytes of [jpg.subarray(0, jpg.length >> 1), Buffer.from('GIF89a but not really')]) {
      const reply = await reqOnce(pipe.endpoint, [header({ id: 'bad' }), bytes], 30_000);
      assert.equal(reply.ok, false);
      if (!reply.ok) assert.equal(reply.error.code, 'BAD_IMAGE');
    }
    assert.deepEqual(lines(await reqOnce(pipe.endpoint, [header({}), jpg], 60_000)), ['Gate 12 now boarding']);
  });
});

test('framepipe demo starts the pipeline, reads the samples, prints them and stops', async () => {
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [path.join(repoRoot, 'bin/framepipe.js'), 'demo'], { timeout: 180_000 });
  assert.match(stdout, /gate-sign\.jpg: \d+×\d+, 1 detection/);
  assert.match(stdout, /"Gate 12 now boarding"/);
  assert.match(stderr, /6 image\(s\), 0 error\(s\)/);
  assert.match(stderr, /pipeline stopped/);
});
