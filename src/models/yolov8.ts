import type { Yolov8Config } from '../config/schema.js';
import { resolveModelFile } from '../config/load.js';
import { bestClass, type Candidate } from './nms.js';
import { formatShape, formatSpecs, imageInput, mismatch, readNames, tensorSpecs } from './model-io.js';
import { ObjectDetector, type HeadDecoder } from './object-detector.js';
import { createSession, outputByName } from './ort.js';

/** The two Ultralytics output layouts, told apart by shape. */
type Variant = 'v8' | 'v5';

/**
 * Ultralytics exports (no NMS in the graph). The boxes are already decoded to centre/size in
 * input pixels and the scores are already sigmoid (MANIFEST §2.2):
 * - YOLOv8/11: [1, 4 + classes, anchors], channel-major, no objectness;
 * - YOLOv5: [1, anchors, 5 + classes], row-major, score = obj × cls.
 */
export async function loadYolov8(config: Yolov8Config, options: { modelsDir: string; threads: number }): Promise<ObjectDetector> {
  const file = resolveModelFile(config.path, options.modelsDir);
  const labels = await readNames(resolveModelFile(config.names, options.modelsDir));
  const session = await createSession(file, { threads: options.threads });
  try {
    const input = imageInput(file, 'yolov8', session, { layout: 'nchw', configured: config.input_size, fallback: [640, 640] });
    const outputs = tensorSpecs(session.outputMetadata);
    const out = outputs.length === 1 ? outputs[0]! : outputs.find((o) => o.name === 'output0');
    if (!out || out.shape.length !== 3) {
      throw mismatch(file, 'yolov8', `expected one output [1, 4 + classes, anchors] or [1, anchors, 5 + classes], model has ${formatSpecs(outputs)}`);
    }
    const nc = labels.length;
    const [, a, b] = out.shape;
    let variant: Variant;
    if (a === 4 + nc) variant = 'v8';
    else if (b === 5 + nc) variant = 'v5';
    else {
      throw mismatch(file, 'yolov8', `output ${out.name} ${formatShape(out.shape)} is neither [1, ${4 + nc}, N] (v8) nor [1, N, ${5 + nc}] (v5) for ${nc} class names`);
    }
    return new ObjectDetector(
      {
        family: 'yolov8',
        file,
        session,
        inputName: input.name,
        batch: input.batch,
        geometry: { width: input.width, height: input.height, fit: 'centre', pad: config.pad, rounding: 'round' },
        labels,
        decode: variant === 'v8' ? v8Head(out.name, nc) : v5Head(out.name, nc),
        facts: { output: out.name, head: variant },
      },
      config,
    );
  } catch (err) {
    await session.release();
    throw err;
  }
}

function box(cx: number, cy: number, w: number, h: number, score: number, cls: number): Candidate {
  return { x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score, cls };
}

/** [1, 4 + nc, N]: element (channel c, anchor i) is at c·N + i. */
function v8Head(outputName: string, nc: number): HeadDecoder {
  return (outputs, threshold) => {
    const t = outputByName(outputs, outputName);
    const data = t.data as Float32Array;
    const n = t.dims[2]!;
    const found: Candidate[] = [];
    for (let i = 0; i < n; i++) {
      let best = 0;
      let cls = 0;
      for (let c = 0, o = 4 * n + i; c < nc; c++, o += n) {
        const v = data[o]!;
        if (v > best) {
          best = v;
          cls = c;
        }
      }
      if (best < threshold) continue;
      found.push(box(data[i]!, data[n + i]!, data[2 * n + i]!, data[3 * n + i]!, best, cls));
    }
    return found;
  };
}

/** [1, N, 5 + nc]: rows [cx, cy, w, h, obj, cls…]. */
function v5Head(outputName: string, nc: number): HeadDecoder {
  const row = 5 + nc;
  return (outputs, threshold) => {
    const t = outputByName(outputs, outputName);
    const data = t.data as Float32Array;
    const n = t.dims[1]!;
    const found: Candidate[] = [];
    for (let i = 0, o = 0; i < n; i++, o += row) {
      const obj = data[o + 4]!;
      if (obj < threshold) continue;
      const { score: best, cls } = bestClass(data, o + 5, nc);
      const score = obj * best;
      if (score < threshold) continue;
      found.push(box(data[o]!, data[o + 1]!, data[o + 2]!, data[o + 3]!, score, cls));
    }
    return found;
  };
}
