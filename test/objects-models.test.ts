// The objects and faces model runners, in-process (no sockets), against the golden outputs in
// ../shared/models/reference-results.json (MANIFEST §4). Run:
//   node --import tsx --test test/objects-models.test.ts
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { StartupError } from '../src/config/errors.js';
import { loadConfig } from '../src/config/load.js';
import { configSchema, type Config } from '../src/config/schema.js';
import { annotate } from '../src/image/annotate.js';
import { decodeImage } from '../src/image/decode.js';
import { Classifier } from '../src/models/classifier.js';
import { iou, type Candidate } from '../src/models/nms.js';
import { ClassifierProcessor, loadObjectDetector, ObjectDetectProcessor } from '../src/models/object-processors.js';
import type { Job } from '../src/protocol/job.js';
import type { Box, Detection } from '../src/protocol/types.js';
import { createDetectProcessor } from '../src/models/registry.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const modelsDir = path.resolve(repoRoot, '../shared/models');
const imagesDir = path.resolve(repoRoot, '../shared/images');
const haveModels = existsSync(path.join(modelsDir, 'reference-results.json')) && existsSync(imagesDir);
const SKIP = `shared models not found at ${modelsDir}`;

interface RefDetection {
  label: string;
  score: number;
  box: Box;
}
interface RefClass {
  idx: number;
  label: string;
  prob: number;
}
type RefImage = { size: [number, number]; mobilenetv2: RefClass[] } & Record<'yolox' | 'yolov8' | 'nanodet' | 'ultraface', RefDetection[]>;
const reference: Record<string, RefImage> = haveModels
  ? (JSON.parse(readFileSync(path.join(modelsDir, 'reference-results.json'), 'utf8')) as { images: Record<string, RefImage> }).images
  : {};
const images = Object.keys(reference).sort();

/** Scores this close to the threshold may fall either side (sharp's resize kernel is not cv2's). */
const SCORE_TOLERANCE = 0.03;
const MIN_IOU = 0.9;

/**
 * Differences beyond the ±0.03 band that were looked at and accepted, so that they stay visible
 * (printed as diagnostics) instead of widening the tolerance for every box. Both are low-score
 * boxes that land on the other side of the threshold with libvips' resize:
 * - YOLOX, two 50-pixel crowd persons on soccer_player.jpg (reference .361 and .341, ours < .30);
 * - NanoDet, the clock false positive on text_sign_directions.jpg (ours .44, reference below .40;
 *   YOLOX and YOLOv8 report the same clock).
 */
const KNOWN_DEVIATIONS: Record<string, RegExp[]> = {
  yolox: [/^soccer_player\.jpg: missing person 0\.3[46]1 /],
  nanodet: [/^text_sign_directions\.jpg: extra clock 0\.4[0-9]+ /],
};

const box = (b: Box): Candidate => ({ x1: b[0], y1: b[1], x2: b[2], y2: b[3], score: 0, cls: 0 });

/**
 * Every reference box clearly above the threshold is found (same label, IoU ≥ 0.9) and every box
 * found clearly above the threshold is in the reference. Returns the problems, empty when it matches.
 */
function compare(got: Detection[], ref: RefDetection[], threshold: number): string[] {
  const problems: string[] = [];
  const firm = threshold + SCORE_TOLERANCE;
  const usedGot = new Set<number>();
  for (const r of ref) {
    let best = -1;
    let bestIou = 0;
    got.forEach((g, i) => {
      if (usedGot.has(i) || g.label !== r.label) return;
      const v = iou(box(g.box), box(r.box));
      if (v > bestIou) [best, bestIou] = [i, v];
    });
    if (best >= 0 && bestIou >= MIN_IOU) usedGot.add(best);
    else if (r.score >= firm) problems.push(`missing ${r.label} ${r.score} [${r.box.join(',')}] (best IoU ${bestIou.toFixed(2)})`);
  }
  got.forEach((g, i) => {
    if (!usedGot.has(i) && g.score >= firm) problems.push(`extra ${g.label} ${g.score.toFixed(3)} [${g.box.map((v) => v.toFixed(0)).join(',')}]`);
  });
  return problems;
}

function config(detect: Record<string, unknown>, classify: Record<string, unknown> = { kind: 'noop' }): Config {
  return configSchema.parse({ models_dir: modelsDir, detect: { model: detect }, classify: { model: classify } });
}

function job(image: Buffer, annotate = false): Job {
  return {
    meta: { job: 1, origin: 'test', id: 't', deadline: Date.now() + 60_000, accepted: Date.now(), options: { annotate }, timings: {}, parts: [] },
    image,
  };
}

const readImage = (name: string) => readFileSync(path.join(imagesDir, name));
const fmt = (t: Record<string, number>) =>
  Object.entries(t)
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(', ');

describe('object detectors against reference-results.json', { skip: haveModels ? false : SKIP }, () => {
  const families = [
    { kind: 'yolox', ref: 'yolox', threshold: 0.3 },
    { kind: 'yolov8', ref: 'yolov8', threshold: 0.25, path: 'yolov8n_int8.onnx' }, // AGPL: tests only
    { kind: 'nanodet', ref: 'nanodet', threshold: 0.4 },
    { kind: 'rfb-faces', ref: 'ultraface', threshold: 0.7 },
  ] as const;
  for (const family of families) {
    test(`${family.kind}: same boxes and labels on every shared image`, async (t) => {
      const model: Record<string, unknown> = { kind: family.kind };
      if ('path' in family) model.path = family.path;
      const processor = await createDetectProcessor(config(model));
      try {
        const failures: string[] = [];
        for (const name of images) {
          const out = await processor.process(job(readImage(name)));
          const ref = reference[name]!;
          assert.deepEqual([out.meta.width, out.meta.height], ref.size, `${name} size`);
          assert.equal(out.image, undefined, 'encoded bytes are dropped');
          assert.equal(out.pixels, undefined, 'no pixels without a classifier or annotate');
          const got = out.meta.detections!;
          for (const d of got) {
            assert.ok(d.box[0] >= 0 && d.box[1] >= 0 && d.box[2] <= ref.size[0] && d.box[3] <= ref.size[1], `${name}: box inside the image`);
          }
          for (const problem of compare(got, ref[family.ref], family.threshold)) {
            const line = `${name}: ${problem}`;
            if ((KNOWN_DEVIATIONS[family.kind] ?? []).some((re) => re.test(line))) t.diagnostic(`known deviation: ${line}`);
            else failures.push(line);
          }
          t.diagnostic(`${name}: ${got.length} boxes; ms ${fmt(out.meta.timings)}`);
        }
        assert.deepEqual(failures, []);
      } finally {
        await processor.close();
      }
    });
  }
});

describe('MobileNetV2 classifier', { skip: haveModels ? false : SKIP }, () => {
  let classifier: Classifier;
  before(async () => {
    const cfg = config({ kind: 'noop' }, { kind: 'classifier' });
    if (cfg.classify.model.kind !== 'classifier') throw new Error('unreachable');
    classifier = await Classifier.load(cfg.classify.model, { modelsDir, threads: 1 });
  });
  after(() => classifier?.close());

  // Confident reference answers (≥ 0.5: 10 of 13 images) must come out the same. Below that
  // (trolleybus .36, English setter .21, menu .16) the int8 model flips with any resize
  // difference, so those are only printed.
  test('top-1 on whole images matches the reference (shorter side 256, centre 224)', async (t) => {
    const failures: string[] = [];
    for (const name of images) {
      const img = await decodeImage(readImage(name), { maxPixels: 40e6 });
      const { classes, timings } = await classifier.classify(img, [[0, 0, img.width, img.height]], 0);
      const top = classes[0]![0]!;
      const ref = reference[name]!.mobilenetv2;
      const want = ref[0]!.label.split(',')[0]!;
      if (ref[0]!.prob >= 0.5 && top.label !== want) failures.push(`${name}: got ${top.label} ${top.score.toFixed(3)}, want ${want} ${ref[0]!.prob}`);
      t.diagnostic(`${name}: ${top.label} ${top.score.toFixed(3)} (ref ${want} ${ref[0]!.prob}); ms ${fmt({ ...timings })}`);
    }
    assert.deepEqual(failures, []);
  });
});

describe('detector sessions in worker threads (detect.model.workers)', { skip: haveModels ? false : SKIP }, () => {
  const families = [{ kind: 'yolox' }, { kind: 'yolov8', path: 'yolov8n_int8.onnx' }, { kind: 'nanodet' }, { kind: 'rfb-faces' }] as const;
  /** The stage's config with its ONNX Runtime threads pinned: results depend on the thread count, not on where the session lives. */
  const pinned = (model: Record<string, unknown>, threads: number): Config =>
    configSchema.parse({ models_dir: modelsDir, detect: { threads, model }, classify: { model: { kind: 'noop' } } });
  for (const family of families) {
    test(`${family.kind}: a worker finds exactly what a session on the stage's thread finds, several images at once`, async () => {
      const onThread = await createDetectProcessor(pinned({ ...family, workers: 0 }, 1));
      const pooled = await createDetectProcessor(pinned({ ...family, workers: 2 }, 2)); // two workers of one thread each
      try {
        assert.equal(onThread.describe().workers, 0);
        assert.equal(onThread.parallelism, 2, 'one inference and one image being decoded');
        assert.equal(pooled.describe().workers, 2);
        assert.equal(pooled.parallelism, 3, 'two inferences and one image being decoded');
        const names = images.slice(0, 6);
        // All at once: more calls than workers, so some queue; each must get its own outputs back.
        const [want, got] = await Promise.all([
          Promise.all(names.map((n) => onThread.process(job(readImage(n))))),
          Promise.all(names.map((n) => pooled.process(job(readImage(n))))),
        ]);
        assert.ok(want.some((j) => j.meta.detections!.length > 0), 'the images have something to find');
        for (const [i, name] of names.entries()) assert.deepEqual(got[i]!.meta.detections, want[i]!.meta.detections, name);
      } finally {
        await onThread.close();
        await pooled.close();
      }
    });
  }

  test('auto: the stage’s own thread, two jobs at once', async () => {
    const objects = await createDetectProcessor(pinned({ kind: 'yolox' }, 2));
    try {
      assert.equal(objects.describe().workers, 0);
      assert.equal(objects.parallelism, 2);
    } finally {
      await objects.close();
    }
  });
});

describe('objects profile: detect → classify in-process', { skip: haveModels ? false : SKIP }, () => {
  let detect: ObjectDetectProcessor;
  let classify: ClassifierProcessor;
  before(async () => {
    const cfg = loadConfig({ profile: 'objects', modelsDir, env: {} });
    assert.equal(cfg.detect.model.kind, 'yolox');
    assert.equal(cfg.classify.model.kind, 'classifier');
    if (cfg.detect.model.kind !== 'yolox' || cfg.classify.model.kind !== 'classifier') return;
    detect = await ObjectDetectProcessor.load(cfg.detect.model, cfg);
    classify = await ClassifierProcessor.load(cfg.classify.model, cfg);
  });
  after(async () => {
    await detect?.close();
    await classify?.close();
  });

  test('every box gets classes; pixels travel to classify and are dropped after it', async (t) => {
    for (const name of ['dog_bicycle_truck.jpg', 'coffee_cup.png', 'eagle.jpg', 'bus_london.jpg']) {
      const afterDetect = await detect.process(job(readImage(name)));
      assert.ok(afterDetect.pixels, 'detect hands the decoded pixels on');
      assert.deepEqual(afterDetect.meta.pixels, { width: afterDetect.meta.width, height: afterDetect.meta.height, channels: 3 });
      const out = await classify.process(afterDetect);
      const dets = out.meta.detections!;
      assert.ok(dets.length > 0, `${name}: detections`);
      for (const d of dets) {
        assert.equal(d.classes?.length, 5, `${name}: ${d.label} has top-5 classes`);
        assert.ok(d.classes!.every((c, i) => i === 0 || c.score <= d.classes![i - 1]!.score), 'classes sorted');
      }
      assert.equal(out.pixels, undefined, 'pixels dropped without annotate');
      assert.equal(out.meta.pixels, undefined);
      t.diagnostic(`${name}: ${dets.map((d) => `${d.label}→${d.classes![0]!.label} ${d.classes![0]!.score.toFixed(2)}`).join(', ')}; ms ${fmt(out.meta.timings)}`);
    }
    // The bird on eagle.jpg is a bald eagle; the cup on coffee_cup.png is an espresso.
    const eagle = await classify.process(await detect.process(job(readImage('eagle.jpg'))));
    assert.equal(eagle.meta.detections!.find((d) => d.label === 'bird')?.classes?.[0]?.label, 'bald eagle');
  });

  test('annotate keeps the pixels, and annotate() draws a JPEG of the same size', async () => {
    const out = await classify.process(await detect.process(job(readImage('person_horse_dog.jpg'), true)));
    assert.ok(out.pixels && out.meta.pixels, 'pixels kept for the sink');
    const jpeg = await annotate({ data: out.pixels, width: out.meta.pixels.width, height: out.meta.pixels.height, channels: 3 }, [
      ...out.meta.detections!,
      { box: [1, 1, 50, 20], score: 0.5, label: 'text', text: '<b>&"\'' },
    ]);
    const meta = await sharp(jpeg).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.deepEqual([meta.width, meta.height], [640, 424]);
  });
});

describe('image kinds users send', { skip: haveModels ? false : SKIP }, () => {
  test('grey PNG, RGBA PNG, CMYK JPEG, EXIF-rotated JPEG and WebP give the same labels', async (t) => {
    const detector = await createDetectProcessor(config({ kind: 'yolox' }));
    try {
      const photo = readImage('person_horse_dog.jpg');
      const labelsOf = async (bytes: Buffer) => {
        const out = await detector.process(job(bytes));
        const labels = [...new Set(out.meta.detections!.filter((d) => d.score >= 0.5).map((d) => d.label))].sort();
        return { labels, size: [out.meta.width, out.meta.height] };
      };
      const want = await labelsOf(photo);
      assert.deepEqual(want.labels, ['dog', 'horse', 'person']);
      const variants: Record<string, Buffer> = {
        'grey png (1 channel)': await sharp(photo).greyscale().toColourspace('b-w').png().toBuffer(),
        'rgba png': await sharp(photo).ensureAlpha(0.8).png().toBuffer(),
        'cmyk jpeg': await sharp(photo).toColourspace('cmyk').jpeg().toBuffer(),
        // Stored turned 90° anticlockwise; EXIF orientation 6 says "turn clockwise to show".
        'exif-rotated jpeg': await sharp(photo).rotate(-90).withMetadata({ orientation: 6 }).jpeg().toBuffer(),
        webp: await sharp(photo).webp().toBuffer(),
      };
      const grey = await sharp(variants['grey png (1 channel)']!).metadata();
      assert.equal(grey.channels, 1, 'the grey PNG really has one channel');
      assert.equal((await sharp(variants['cmyk jpeg']!).metadata()).space, 'cmyk');
      for (const [kind, bytes] of Object.entries(variants)) {
        const got = await labelsOf(bytes);
        t.diagnostic(`${kind}: ${got.labels.join(', ')}`);
        assert.deepEqual(got.labels, want.labels, kind);
        assert.deepEqual(got.size, want.size, `${kind}: size after EXIF rotation`);
      }
    } finally {
      await detector.close();
    }
  });
});

describe('refusing a model that does not fit', { skip: haveModels ? false : SKIP }, () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a classifier file given as a yolox detector', { kind: 'yolox', path: 'mobilenetv2-12-int8.onnx' }, /yolox/],
    ['a names file with the wrong class count', { kind: 'yolox', names: 'imagenet1k.names' }, /1000 names/],
    ['a wrong input size', { kind: 'yolox', input_size: [640, 640] }, /fixed at 416×416/],
    // (A YOLOX file passes as yolov8: [1,3549,85] IS the YOLOv5 layout, and shapes cannot tell them apart.)
    ['a NanoDet file given as yolov8', { kind: 'yolov8', path: 'nanodet-m-416.onnx' }, /expected one output/],
    ['a face detector given as yolox', { kind: 'yolox', path: 'version-RFB-320.onnx' }, /expected one output/],
    ['a YOLOX file given as nanodet', { kind: 'nanodet', path: 'yolox_nano.onnx' }, /stride 8/],
  ];
  for (const [what, model, message] of cases) {
    test(`MODEL_MISMATCH for ${what}`, async () => {
      const cfg = config(model);
      if (cfg.detect.model.kind === 'ocr-det' || cfg.detect.model.kind === 'noop') throw new Error('unreachable');
      await assert.rejects(loadObjectDetector(cfg.detect.model, { modelsDir, threads: 1 }), (err: unknown) => {
        assert.ok(err instanceof StartupError, String(err));
        assert.equal(err.code, 'MODEL_MISMATCH');
        assert.match(err.message, message);
        return true;
      });
    });
  }

  test('MODEL_MISMATCH for a detector file given as the classifier', async () => {
    const cfg = config({ kind: 'noop' }, { kind: 'classifier', path: 'yolox_nano.onnx' });
    if (cfg.classify.model.kind !== 'classifier') throw new Error('unreachable');
    await assert.rejects(Classifier.load(cfg.classify.model, { modelsDir, threads: 1 }), { code: 'MODEL_MISMATCH' });
  });
});

if (!haveModels) test('objects models', (t) => t.skip(SKIP));
