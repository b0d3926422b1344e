// The public API of the framepipe package: an explicit list, values and types apart.
export { Client, ClientTimeoutError } from './client/client.js';
export { ReqClient } from './client/req-client.js';
export type { ReqClientOptions } from './client/req-client.js';
export type { ClientOptions, InferOptions } from './client/client.js';

export {
  ErrorCode,
  FramepipeError,
  BadRequestError,
  BadImageError,
  TooLargeError,
  TimeoutError,
  OverloadedError,
  InternalError,
} from './protocol/errors.js';
export type { WireError } from './protocol/errors.js';
export { encodeHeader, decodeReply, isSkipped } from './protocol/request.js';
export { SKIPPED } from './protocol/types.js';
export type { Box, Point, ClassScore, Detection, OkReply, ErrorReply, SkippedReply, Reply, RequestOptions, RequestHeader } from './protocol/types.js';

export { loadConfig, resolveModelFile } from './config/load.js';
export type { LoadOptions } from './config/load.js';
export type { Config } from './config/schema.js';
export { ConfigError, StartupError } from './config/errors.js';
export type { StartupCode } from './config/errors.js';

export { launchPipeline } from './cli/launcher.js';
export type { LaunchOptions, Pipeline } from './cli/launcher.js';

export type { StageProcessor } from './stage/processor.js';
export type { Job, JobMeta } from './protocol/job.js';
