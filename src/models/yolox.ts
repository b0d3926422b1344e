import type { YoloxConfig } from '../config/schema.js';
import { resolveModelFile } from '../config/load.js';
import { bestClass, type Candidate } from './nms.js';
import { formatSpecs, imageInput, mismatch, readNames, tensorSpecs } from './model-io.js';
import { ObjectDetector, type HeadDecoder } from './object-detector.js';
import { createSession, outputByName } from './ort.js';

const STRIDES = [8, 16, 32];

/**
 * YOLOX exported with decode_in_inference = False (the official ONNX export): one output
 * [1, anchors, 5 + classes], rows [tx, ty, tw, th, obj, cls…] with obj and cls already through
 * a sigmoid and the box still relative to its grid cell (MANIFEST §2.1).
 */
export async function loadYolox(config: YoloxConfig, options: { modelsDir: string; threads: number }): Promise<ObjectDetector> {
  const file = resolveModelFile(config.path, options.modelsDir);
  const labels = await readNames(resolveModelFile(config.names, options.modelsDir));
  const session = await createSession(file, { threads: options.threads });
  try {
    const input = imageInput(file, 'yolox', session, { layout: 'nchw', configured: config.input_size, fallback: [416, 416] });
    const outputs = tensorSpecs(session.outputMetadata);
    const out = outputs.length === 1 ? outputs[0]! : outputs.find((o) => o.name === 'output');
    if (!out || out.shape.length !== 3) {
      throw mismatch(file, 'yolox', `expected one output [1, anchors, 5 + classes], model has ${formatSpecs(outputs)}`);
    }
    const cells = STRIDES.map((s) => [Math.floor(input.width / s), Math.floor(input.height / s)] as const);
    const anchors = cells.reduce((n, [gw, gh]) => n + gw * gh, 0);
    const [, n, row] = out.shape;
    if (typeof n === 'number' && n !== anchors) {
      throw mismatch(file, 'yolox', `output ${out.name} has ${n} anchors; a ${input.width}×${input.height} input gives ${anchors} (strides 8/16/32)`);
    }
    if (row !== 5 + labels.length) {
      throw mismatch(file, 'yolox', `output ${out.name} rows hold ${String(row)} values; ${labels.length} names need ${5 + labels.length}`);
    }
    const decode = yoloxHead(out.name, labels.length, cells);
    return new ObjectDetector(
      {
        family: 'yolox',
        file,
        session,
        inputName: input.name,
        batch: input.batch,
        geometry: { width: input.width, height: input.height, fit: 'top-left', pad: config.pad, rounding: 'floor' },
        labels,
        decode,
        facts: { output: out.name },
      },
      config,
    );
  } catch (err) {
    await session.release();
    throw err;
  }
}

function yoloxHead(outputName: string, classes: number, cells: ReadonlyArray<readonly [number, number]>): HeadDecoder {
  const row = 5 + classes;
  return (outputs, threshold) => {
    const data = outputByName(outputs, outputName).data as Float32Array;
    const found: Candidate[] = [];
    let i = 0;
    for (let level = 0; level < cells.length; level++) {
      const [gw, gh] = cells[level]!;
      const s = STRIDES[level]!;
      for (let gy = 0; gy < gh; gy++) {
        for (let gx = 0; gx < gw; gx++, i++) {
          const o = i * row;
          const obj = data[o + 4]!;
          // score = obj × max(cls) ≤ obj: most rows end here.
          if (obj < threshold) continue;
          const { score: best, cls } = bestClass(data, o + 5, classes);
          const score = obj * best;
          if (score < threshold) continue;
          const cx = (data[o]! + gx) * s;
          const cy = (data[o + 1]! + gy) * s;
          const w = Math.exp(data[o + 2]!) * s;
          const h = Math.exp(data[o + 3]!) * s;
          found.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score, cls });
        }
      }
    }
    return found;
  };
}
