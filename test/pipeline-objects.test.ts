// The objects profile end to end through real stage processes: YOLOX-Nano finds the objects,
// MobileNetV2 classifies each crop, and the reply carries both (models from ../shared/models).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { hasShared, header, reqOnce, sharedDir, startPipeline, type TestPipeline } from './helpers.js';
import type { Detection, Reply } from '../src/protocol/types.js';

const skip = hasShared ? false : 'SKIPPED: ../shared/models is absent (real models and photos live there)';
const image = (name: string) => readFileSync(path.join(sharedDir, 'images', name));

function ok(reply: Reply): Detection[] {
  assert.equal(reply.ok, true, JSON.stringify(reply));
  return reply.ok ? reply.detections : [];
}

describe('objects profile through the pipeline', { skip }, () => {
  let pipe: TestPipeline;
  before(async () => {
    pipe = await startPipeline('objects', [`models_dir=${path.join(sharedDir, 'models')}`]);
  });
  after(async () => {
    await pipe?.stop();
  });

  test('dog_bicycle_truck: dog, bicycle and car found, every box classified', async () => {
    const dets = ok(await reqOnce(pipe.endpoint, [header({ id: 'dog' }), image('dog_bicycle_truck.jpg')], 30_000));
    const labels = new Set(dets.map((d) => d.label));
    for (const want of ['dog', 'bicycle', 'car']) assert.ok(labels.has(want), `has ${want}: ${[...labels]}`);
    const dog = dets.find((d) => d.label === 'dog')!;
    // Reference (MANIFEST §4): dog .83 at [133,207,325,542].
    assert.ok(Math.abs(dog.box[0] - 133) < 8 && Math.abs(dog.box[3] - 542) < 8, `dog box ${dog.box}`);
    for (const d of dets) assert.ok(d.classes && d.classes.length === 5, 'top-5 classes on every detection');
  });

  test('min_score and max_detections filter the reply', async () => {
    const img = image('dog_bicycle_truck.jpg');
    const all = ok(await reqOnce(pipe.endpoint, [header({}), img], 30_000));
    assert.ok(all.some((d) => d.score < 0.5), 'the photo has a low-score box (cat .39)');
    const confident = ok(await reqOnce(pipe.endpoint, [header({ min_score: 0.5 }), img], 30_000));
    assert.deepEqual(confident.map((d) => d.label), all.filter((d) => d.score >= 0.5).map((d) => d.label));
    const top = ok(await reqOnce(pipe.endpoint, [header({ max_detections: 1 }), img], 30_000));
    assert.equal(top.length, 1);
    assert.equal(top[0]!.score, Math.max(...all.map((d) => d.score)));
  });

  test('eagle: one bird, classified as a bald eagle', async () => {
    const dets = ok(await reqOnce(pipe.endpoint, [header({ id: 'eagle' }), image('eagle.jpg')], 30_000));
    assert.deepEqual(dets.map((d) => d.label), ['bird']);
    assert.equal(dets[0]!.classes?.[0]?.label.split(',')[0], 'bald eagle');
  });

  test('annotate: true returns a JPEG of the original size', async () => {
    const reply = await reqOnce(pipe.endpoint, [header({ id: 'a', annotate: true }), image('person_horse_dog.jpg')], 30_000);
    assert.equal(reply.ok, true);
    if (!reply.ok || !reply.annotated) return assert.fail('no annotated image');
    const meta = await sharp(Buffer.from(reply.annotated)).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.width, 640);
    assert.equal(meta.height, 424);
  });

  test('a grayscale PNG and a WebP of the same photo give the same labels', async () => {
    const jpg = image('person_horse_dog.jpg');
    const gray = await sharp(jpg).grayscale().png().toBuffer();
    const webp = await sharp(jpg).webp({ quality: 90 }).toBuffer();
    const want = ok(await reqOnce(pipe.endpoint, [header({}), jpg], 30_000)).map((d) => d.label).sort();
    assert.deepEqual(ok(await reqOnce(pipe.endpoint, [header({}), webp], 30_000)).map((d) => d.label).sort(), want);
    const grayLabels = ok(await reqOnce(pipe.endpoint, [header({}), gray], 30_000)).map((d) => d.label);
    for (const l of ['person', 'horse', 'dog']) assert.ok(grayLabels.includes(l), `gray has ${l}`);
  });

  test('a truncated JPEG gets BAD_IMAGE and the next request still works', async () => {
    const jpg = image('eagle.jpg');
    const reply = await reqOnce(pipe.endpoint, [header({ id: 't' }), jpg.subarray(0, 20_000)], 30_000);
    assert.equal(reply.ok, false);
    if (!reply.ok) assert.equal(reply.error.code, 'BAD_IMAGE');
    ok(await reqOnce(pipe.endpoint, [header({ id: 'after' }), jpg], 30_000));
  });
});
