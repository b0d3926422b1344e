import type { RfbFacesConfig } from '../config/schema.js';
import { resolveModelFile } from '../config/load.js';
import type { Candidate } from './nms.js';
import { formatSpecs, imageInput, mismatch, tensorSpecs, type TensorSpec } from './model-io.js';
import { ObjectDetector, type HeadDecoder } from './object-detector.js';
import { createSession, outputByName } from './ort.js';

/**
 * Ultra-Light-Fast-Generic-Face-Detector (RFB-320, slim-320, …). The graph decodes its priors
 * itself: `scores` [1, N, 2] are softmaxed (column 1 = face) and `boxes` [1, N, 4] are corners
 * normalised to 0..1 of the (stretched) input (MANIFEST §2.5).
 */
export async function loadRfbFaces(config: RfbFacesConfig, options: { modelsDir: string; threads: number }): Promise<ObjectDetector> {
  const file = resolveModelFile(config.path, options.modelsDir);
  const session = await createSession(file, { threads: options.threads });
  try {
    const input = imageInput(file, 'rfb-faces', session, { layout: 'nchw', configured: config.input_size, fallback: [320, 240] });
    const outputs = tensorSpecs(session.outputMetadata);
    // Bound by name as exported; by last dimension for re-exports that renamed them.
    const pick = (name: string, last: number): TensorSpec | undefined =>
      outputs.find((o) => o.name === name && o.shape.length === 3 && o.shape[2] === last) ??
      outputs.find((o) => o.shape.length === 3 && o.shape[2] === last);
    const scores = pick('scores', 2);
    const boxes = pick('boxes', 4);
    if (!scores || !boxes || (typeof scores.shape[1] === 'number' && scores.shape[1] !== boxes.shape[1])) {
      throw mismatch(file, 'rfb-faces', `expected outputs scores [1,N,2] and boxes [1,N,4], model has ${formatSpecs(outputs)}`);
    }
    return new ObjectDetector(
      {
        family: 'rfb-faces',
        file,
        session,
        inputName: input.name,
        batch: input.batch,
        geometry: { width: input.width, height: input.height, fit: 'stretch', pad: config.pad, rounding: 'round' },
        labels: [config.label],
        decode: rfbHead(scores.name, boxes.name, input.width, input.height),
        facts: { outputs: `${scores.name}, ${boxes.name}` },
      },
      config,
    );
  } catch (err) {
    await session.release();
    throw err;
  }
}

function rfbHead(scoresName: string, boxesName: string, width: number, height: number): HeadDecoder {
  return (outputs, threshold) => {
    const scores = outputByName(outputs, scoresName).data as Float32Array;
    const boxes = outputByName(outputs, boxesName).data as Float32Array;
    const n = scores.length / 2;
    const found: Candidate[] = [];
    for (let i = 0; i < n; i++) {
      const score = scores[2 * i + 1]!;
      if (score < threshold) continue;
      const o = 4 * i;
      // Normalised corners → input pixels; the shared mapping then undoes the stretch.
      found.push({ x1: boxes[o]! * width, y1: boxes[o + 1]! * height, x2: boxes[o + 2]! * width, y2: boxes[o + 3]! * height, score, cls: 0 });
    }
    return found;
  };
}
