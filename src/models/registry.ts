import type { Config } from '../config/schema.js';
import type { StageProcessor } from '../stage/processor.js';
import { NoopProcessor } from './noop.js';

/**
 * Maps a profile's `model.kind` to the processor that runs it. One new model family = one new
 * processor file plus one line here and one schema entry in src/config/schema.ts.
 */
export async function createDetectProcessor(config: Config): Promise<StageProcessor> {
  const model = config.detect.model;
  switch (model.kind) {
    case 'noop':
      return new NoopProcessor('noop-detect', model.decode, config.limits.max_pixels, model.delay_ms);
    case 'ocr-det': {
      const { OcrDetectProcessor } = await import('./ocr-processors.js');
      return OcrDetectProcessor.load(model, config);
    }
    case 'yolox':
    case 'yolov8':
    case 'nanodet':
    case 'rfb-faces': {
      // One processor for every object detector family; it picks the family's runner.
      const { ObjectDetectProcessor } = await import('./object-processors.js');
      return ObjectDetectProcessor.load(model, config);
    }
  }
}

export async function createClassifyProcessor(config: Config): Promise<StageProcessor> {
  const model = config.classify.model;
  switch (model.kind) {
    case 'noop':
      return new NoopProcessor('noop-classify', model.decode, config.limits.max_pixels, model.delay_ms, true);
    case 'ocr-rec': {
      const { OcrClassifyProcessor } = await import('./ocr-processors.js');
      return OcrClassifyProcessor.load(model, config);
    }
    case 'classifier': {
      const { ClassifierProcessor } = await import('./object-processors.js');
      return ClassifierProcessor.load(model, config);
    }
  }
}
