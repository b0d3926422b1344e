import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { OcrRecConfig } from '../config/schema.js';
import { cropColumns, lineCorners, resizeToHeight, rotate180, toMat, warpQuad } from '../image/crop.js';
import type { RgbImage } from '../image/decode.js';
import { loadOpenCv, type OpenCv } from '../image/opencv.js';
import { emptyColumns, longestEmptyRun } from '../image/ink-gaps.js';
import { PADDLE_REC, fillTensor } from '../image/fill-tensor.js';
import { ctcRows, tokensToText, type CtcToken } from './ctc.js';
import { SessionPool } from './ort-pool.js';
import { resolveModelFile } from '../config/load.js';
import type { TextRegion } from './ocr-det.js';
import { createSession, ort, outputByName } from './ort.js';
import { meters } from '../metrics/meters.js';

/** What one text region says. */
export interface TextLine {
  /** Empty when nothing was read. */
  text: string;
  /** Mean probability of the emitted characters, 0..1 (0 for no text). */
  score: number;
  /** The region was read turned 180° (the text in the image is upside down). */
  upsideDown: boolean;
}

/** Milliseconds spent in each step of the last recognize() call (with calls at once: of whichever started last). */
export interface RecTimings {
  crop: number;
  /** One entry per direction classifier call. */
  cls: number[];
  /** One entry per recognizer call (inference only) and the lines in it. */
  rec: { lines: number; width: number; ms: number }[];
  decode: number;
}

const HEIGHT = 48;
const CLS_WIDTH = 192;
const REC_OUTPUT = 'softmax_11.tmp_0';
const CLS_OUTPUT = 'softmax_0.tmp_0';
/**
 * How much more confident the 180° reading must be to replace the upright one. The classifier
 * alone is not trusted (MANIFEST §2.6: confident wrong "180" on long upright lines); an upright
 * line read upside down gives a clearly worse confidence, an upside-down one a clearly better.
 */
const FLIP_MARGIN = 0.05;

/** PP-OCRv4 text recognizer (CTC) with the PP-OCR direction classifier as a 180° check. */
export class TextRecognizer {
  /** Timings of the most recent recognize(). */
  lastTimings: RecTimings = { crop: 0, cls: [], rec: [], decode: 0 };

  private constructor(
    /** Where inference runs: sessions on this thread, or a pool of worker threads. */
    private readonly engine: Engine,
    private readonly dict: readonly string[],
    private readonly cv: OpenCv,
    private readonly files: { rec: string; cls?: string; dictionary: string },
    private readonly cfg: OcrRecConfig,
    private readonly threads: number,
  ) {}

  /**
   * `threads`: the stage's ONNX Runtime threads. With `cfg.workers` (auto: one per thread, if
   * there are 2 or more) of 1 or more the sessions live in that many worker threads and split the
   * threads among them; 0 keeps them on the stage's own thread.
   */
  static async load(cfg: OcrRecConfig, opts: { modelsDir: string; threads: number }): Promise<TextRecognizer> {
    const recFile = resolveModelFile(cfg.path, opts.modelsDir);
    const dictFile = resolveModelFile(cfg.dictionary, opts.modelsDir);
    const clsFile = cfg.direction === '' ? undefined : resolveModelFile(cfg.direction, opts.modelsDir);
    // Class k is dict[k−1]; the dictionary file has no space, the model's last class is one.
    const dict = [...readFileSync(dictFile, 'utf8').replace(/\r/g, '').split('\n'), ' '];
    // auto: side by side when there are threads to split (measured: two 1-thread recognizers beat
    // one 2-thread one), else on the stage's thread.
    const workers = cfg.workers === 'auto' ? (opts.threads >= 2 ? Math.min(opts.threads, 16) : 0) : cfg.workers;
    const files = { rec: recFile, ...(clsFile === undefined ? {} : { cls: clsFile }) };
    const [engine, cv] = await Promise.all([
      workers >= 1 ? poolEngine(files, workers, Math.max(1, Math.floor(opts.threads / workers))) : sessionEngine(files, opts.threads),
      loadOpenCv(),
    ]);
    return new TextRecognizer(engine, dict, cv, { rec: recFile, cls: clsFile, dictionary: dictFile }, cfg, opts.threads);
  }

  /** Undefined while recognition can run; why not once every worker died for good. */
  health(): string | undefined {
    return this.engine.dead?.() ? 'every ONNX Runtime worker of the recognizer died and none could start again' : undefined;
  }

  /** Calls it runs at once: one per worker, or one on the stage's thread. */
  get parallelism(): number {
    return Math.max(1, this.engine.workers);
  }

  describe(): Record<string, unknown> {
    return {
      model: path.basename(this.files.rec),
      dictionary: path.basename(this.files.dictionary),
      characters: this.dict.length,
      direction: this.files.cls === undefined ? null : path.basename(this.files.cls),
      direction_threshold: this.cfg.direction_threshold,
      batch: this.cfg.batch,
      min_width: this.cfg.min_width,
      threads: this.threads,
      workers: this.engine.workers,
    };
  }

  async recognize(img: RgbImage, regions: TextRegion[]): Promise<TextLine[]> {
    return (await this.recognizeMany([{ img, regions }]))[0]!;
  }

  /**
   * The regions of several images (several requests, batched by the classify stage): their lines
   * share the classifier and recognizer calls, so short lines of different images fill one batch.
   * One list of lines per image, in order.
   */
  async recognizeMany(items: readonly { img: RgbImage; regions: TextRegion[] }[]): Promise<TextLine[][]> {
    // This call's own: calls at once (concurrency > 1) must not write into each other's.
    const timings: RecTimings = { crop: 0, cls: [], rec: [], decode: 0 };
    this.lastTimings = timings;
    const t0 = performance.now();
    const perItem = items.map(({ img, regions }) => (regions.length === 0 ? [] : this.cropLines(img, regions)));
    const lines = perItem.flat();
    timings.crop = performance.now() - t0;
    if (lines.length === 0) return items.map(() => []);

    const flip: number[] = [];
    if (this.engine.hasCls) {
      const p180 = await this.classify(lines, timings);
      p180.forEach((p, i) => {
        if (p >= this.cfg.direction_threshold) flip.push(i);
      });
    }
    // Upright readings and the 180° candidates go through the recognizer together, so that the
    // orientation check costs rows in the same batches rather than calls of its own.
    const reads = await this.read([...lines, ...flip.map((i) => rotate180(lines[i]!))], timings);
    const result: TextLine[] = lines.map((_, i) => ({ ...reads[i]!, upsideDown: false }));
    flip.forEach((i, k) => {
      const turned = reads[lines.length + k]!;
      if (turned.text.length > 0 && turned.score > result[i]!.score + FLIP_MARGIN) result[i] = { ...turned, upsideDown: true };
    });
    const out: TextLine[][] = [];
    let at = 0;
    for (const l of perItem) {
      out.push(result.slice(at, at + l.length));
      at += l.length;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.engine.close();
  }

  /** Every region cut out upright and scaled to the rec height. */
  private cropLines(img: RgbImage, regions: TextRegion[]): RgbImage[] {
    const src = toMat(this.cv, img);
    try {
      return regions.map((r) => {
        const { corners, width, height } = lineCorners(r.polygon);
        return resizeToHeight(this.cv, warpQuad(this.cv, src, corners, width, height), HEIGHT);
      });
    } finally {
      src.delete();
    }
  }

  /**
   * P(180°) per line. The classifier sees a centred 4:1 window of the line rather than the whole
   * line squashed to 192 columns: squashed long lines are what it gets confidently wrong.
   */
  private async classify(lines: RgbImage[], timings: RecTimings): Promise<number[]> {
    const p180: number[] = new Array(lines.length);
    const starts: number[] = [];
    for (let b = 0; b < lines.length; b += this.cfg.batch) starts.push(b);
    await this.inFlight(starts, async (b) => {
      const chunk = lines.slice(b, b + this.cfg.batch);
      const item = 3 * HEIGHT * CLS_WIDTH;
      const input = new Float32Array(chunk.length * item);
      chunk.forEach((line, i) => {
        const window = line.width > CLS_WIDTH ? cropColumns(line, (line.width - CLS_WIDTH) >> 1, CLS_WIDTH) : line;
        fillTensor(window.data, window.width, HEIGHT, PADDLE_REC, input, i * item, { width: CLS_WIDTH, height: HEIGHT });
      });
      meters()?.batch.observe({ model: 'ocr-cls' }, chunk.length);
      const t0 = performance.now();
      const probs = await this.engine.cls(input, [chunk.length, 3, HEIGHT, CLS_WIDTH]);
      timings.cls.push(performance.now() - t0);
      for (let i = 0; i < chunk.length; i++) p180[b + i] = probs[i * 2 + 1]!;
    });
    return p180;
  }

  /**
   * Runs `call` on every item with as many at once as the engine has workers, plus one whose
   * tensor is being filled meanwhile: the tensors of a page of lines are not all in memory at once.
   */
  private async inFlight<T>(items: readonly T[], call: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const lane = async () => {
      while (next < items.length) await call(items[next++]!);
    };
    const lanes = Math.min(items.length, this.engine.workers === 0 ? 1 : this.engine.workers + 1);
    await Promise.all(Array.from({ length: lanes }, lane));
  }

  /**
   * Reads lines in as few calls as the batch size allows. Lines are sorted by width and a batch
   * only takes lines up to 1.25× the width of its narrowest: every row is padded to the widest,
   * and PP-OCRv4 rec (SVTR, with attention over the width) costs more than linearly in width,
   * so padding a short line to a long one costs more than a separate call saves.
   */
  private async read(lines: RgbImage[], timings: RecTimings): Promise<{ text: string; score: number }[]> {
    const order = lines.map((_, i) => i).sort((a, b) => lines[a]!.width - lines[b]!.width);
    const batches: number[][] = [];
    for (const i of order) {
      const batch = batches[batches.length - 1];
      const first = batch === undefined ? 0 : Math.max(this.cfg.min_width, lines[batch[0]!]!.width);
      if (batch && batch.length < this.cfg.batch && lines[i]!.width <= first * 1.25) batch.push(i);
      else batches.push([i]);
    }
    const results: { text: string; score: number }[] = new Array(lines.length);
    // With a pool of workers, batches run side by side.
    await this.inFlight(batches, async (idx) => {
      const maxWidth = Math.max(...idx.map((i) => lines[i]!.width));
      // A multiple of 8 keeps every CTC step exactly 8 input columns wide.
      const width = Math.ceil(Math.max(this.cfg.min_width, maxWidth) / 8) * 8;
      const item = 3 * HEIGHT * width;
      // Zero after normalisation is the padding PaddleOCR uses.
      const input = new Float32Array(idx.length * item);
      idx.forEach((li, k) => {
        const line = lines[li]!;
        fillTensor(line.data, line.width, HEIGHT, PADDLE_REC, input, k * item, { width, height: HEIGHT });
      });
      meters()?.batch.observe({ model: 'ocr-rec' }, idx.length);
      const t0 = performance.now();
      const { tokens, steps } = await this.engine.rec(input, [idx.length, 3, HEIGHT, width]);
      const t1 = performance.now();
      timings.rec.push({ lines: idx.length, width, ms: t1 - t0 });
      idx.forEach((li, k) => {
        const full = emptyColumns(lines[li]!, 0.06);
        const core = emptyColumns(lines[li]!, 0.2);
        const line = tokens[k]!;
        const text = tokensToText(line, this.dict, {
          stepPx: width / steps,
          lineHeightPx: HEIGHT,
          emptyRun: (x0, x1) => ({
            full: longestEmptyRun(full, Math.round(x0), Math.round(x1)),
            core: longestEmptyRun(core, Math.round(x0), Math.round(x1)),
          }),
        });
        const score = line.length === 0 ? 0 : line.reduce((s, t) => s + t.prob, 0) / line.length;
        results[li] = { text, score };
      });
      timings.decode += performance.now() - t1;
    });
    return results;
  }
}

/** The recognizer's two models, wherever they run. */
interface Engine {
  /** Worker threads; 0: sessions on the stage's own thread (one call at a time). */
  workers: number;
  /** With workers: whether all of them died for good. */
  dead?: () => boolean;
  hasCls: boolean;
  /** Greedy CTC tokens per batch row, and the model's time steps. */
  rec(input: Float32Array, dims: number[]): Promise<{ tokens: CtcToken[][]; steps: number }>;
  /** The direction classifier's probabilities, batch × 2. */
  cls(input: Float32Array, dims: number[]): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Sessions on the stage's own thread: one call at a time. */
async function sessionEngine(files: { rec: string; cls?: string }, threads: number): Promise<Engine> {
  const [rec, cls] = await Promise.all([createSession(files.rec, { threads }), files.cls === undefined ? undefined : createSession(files.cls, { threads })]);
  return {
    workers: 0,
    hasCls: cls !== undefined,
    async rec(input, dims) {
      const out = outputByName(await rec.run({ [rec.inputNames[0]!]: new ort.Tensor('float32', input, dims) }), REC_OUTPUT);
      return { tokens: ctcRows(out.data as Float32Array, out.dims), steps: out.dims[1]! };
    },
    async cls(input, dims) {
      const out = await cls!.run({ [cls!.inputNames[0]!]: new ort.Tensor('float32', input, dims) });
      return outputByName(out, CLS_OUTPUT).data as Float32Array;
    },
    async close() {
      await Promise.all([rec.release(), cls?.release()]);
    },
  };
}

/** Sessions in `workers` worker threads of `threads` threads each: that many calls at once. */
async function poolEngine(files: { rec: string; cls?: string }, workers: number, threads: number): Promise<Engine> {
  const pool = await SessionPool.create(files, { workers, threads });
  return {
    workers,
    hasCls: files.cls !== undefined,
    async rec(input, dims) {
      const r = await pool.run('rec', input, dims, REC_OUTPUT, 'ctc');
      if (!('tokens' in r)) throw new Error('rec worker returned no tokens');
      return { tokens: r.tokens, steps: r.dims[1]! };
    },
    async cls(input, dims) {
      const r = await pool.run('cls', input, dims, CLS_OUTPUT);
      if (!('values' in r)) throw new Error('cls worker returned no values');
      return r.values;
    },
    dead: () => pool.dead,
    close: () => pool.close(),
  };
}
