import type { NanodetConfig } from '../config/schema.js';
import { resolveModelFile } from '../config/load.js';
import type { Candidate } from './nms.js';
import { formatSpecs, imageInput, mismatch, readNames, tensorSpecs } from './model-io.js';
import { ObjectDetector, type HeadDecoder } from './object-detector.js';
import { createSession, outputByName } from './ort.js';

/** One stride of the head: which outputs hold its class scores and its box distributions. */
interface Level {
  stride: number;
  cols: number;
  count: number;
  clsName: string;
  boxName: string;
}

/**
 * NanoDet (GFL head). Its output names are meaningless numbers, so the outputs are matched by
 * shape: per stride s, a class tensor [1, n, classes] (already sigmoid) and a box tensor
 * [1, n, 4·(reg_max+1)] with n = ⌈H/s⌉·⌈W/s⌉ (MANIFEST §2.3).
 */
export async function loadNanodet(config: NanodetConfig, options: { modelsDir: string; threads: number }): Promise<ObjectDetector> {
  const file = resolveModelFile(config.path, options.modelsDir);
  const labels = await readNames(resolveModelFile(config.names, options.modelsDir));
  const session = await createSession(file, { threads: options.threads });
  try {
    const input = imageInput(file, 'nanodet', session, { layout: 'nchw', configured: config.input_size, fallback: [416, 416] });
    const outputs = tensorSpecs(session.outputMetadata);
    const nc = labels.length;
    let bins = 0;
    const levels: Level[] = config.strides.map((stride) => {
      const cols = Math.ceil(input.width / stride);
      const count = cols * Math.ceil(input.height / stride);
      const here = outputs.filter((o) => o.shape.length === 3 && o.shape[1] === count);
      const cls = here.find((o) => o.shape[2] === nc);
      const box = here.find((o) => o !== cls && typeof o.shape[2] === 'number' && o.shape[2] % 4 === 0);
      if (!cls || !box) {
        throw mismatch(
          file,
          'nanodet',
          `no [1,${count},${nc}] class and [1,${count},4·bins] box outputs for stride ${stride} (${nc} class names, ${input.width}×${input.height} input); model has ${formatSpecs(outputs)}`,
        );
      }
      const b = (box.shape[2] as number) / 4;
      if (bins !== 0 && b !== bins) throw mismatch(file, 'nanodet', 'box outputs disagree on the number of bins');
      bins = b;
      return { stride, cols, count, clsName: cls.name, boxName: box.name };
    });
    return new ObjectDetector(
      {
        family: 'nanodet',
        file,
        session,
        inputName: input.name,
        batch: input.batch,
        geometry: { width: input.width, height: input.height, fit: 'centre', pad: config.pad, rounding: 'round' },
        labels,
        decode: gflHead(levels, nc, bins),
        facts: { reg_max: bins - 1, outputs: levels.map((l) => `${l.stride}:${l.clsName}/${l.boxName}`).join(' ') },
      },
      config,
    );
  } catch (err) {
    await session.release();
    throw err;
  }
}

function gflHead(levels: Level[], nc: number, bins: number): HeadDecoder {
  const prob = new Float64Array(bins);
  // Expected distance of one side: softmax over the bins, weighted by bin index.
  const side = (d: Float32Array, o: number): number => {
    let max = -Infinity;
    for (let k = 0; k < bins; k++) max = Math.max(max, d[o + k]!);
    let sum = 0;
    for (let k = 0; k < bins; k++) sum += prob[k] = Math.exp(d[o + k]! - max);
    let e = 0;
    for (let k = 1; k < bins; k++) e += k * prob[k]!;
    return e / sum;
  };
  return (outputs, threshold) => {
    const found: Candidate[] = [];
    for (const level of levels) {
      const scores = outputByName(outputs, level.clsName).data as Float32Array;
      const dist = outputByName(outputs, level.boxName).data as Float32Array;
      const s = level.stride;
      for (let i = 0; i < level.count; i++) {
        let best = 0;
        let cls = 0;
        for (let c = 0, o = i * nc; c < nc; c++, o++) {
          const v = scores[o]!;
          if (v > best) {
            best = v;
            cls = c;
          }
        }
        if (best < threshold) continue;
        // Prior at the cell centre: without the +0.5 every box shifts by half a stride.
        const cx = ((i % level.cols) + 0.5) * s;
        const cy = (Math.floor(i / level.cols) + 0.5) * s;
        const o = i * 4 * bins;
        const l = side(dist, o) * s;
        const t = side(dist, o + bins) * s;
        const r = side(dist, o + 2 * bins) * s;
        const b = side(dist, o + 3 * bins) * s;
        found.push({ x1: cx - l, y1: cy - t, x2: cx + r, y2: cy + b, score: best, cls });
      }
    }
    return found;
  };
}
