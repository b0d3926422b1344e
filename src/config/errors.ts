/**
 * Start-up failures. They never reach a client: a stage that meets one logs it and exits
 * non-zero, so each carries a stable code for scripts and supervisors to match on.
 */
export type StartupCode = 'CONFIG_INVALID' | 'MODEL_MISSING' | 'MODEL_MISMATCH' | 'ADDRESS_IN_USE' | 'START_FAILED';

export class StartupError extends Error {
  readonly code: StartupCode;
  constructor(code: StartupCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'StartupError';
  }
}

/** A config file, environment variable or flag holds a bad value; the message names the key. */
export class ConfigError extends StartupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', message, options);
    this.name = 'ConfigError';
  }
}
