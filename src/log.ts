import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/**
 * Structured JSON logs (one object a line, `stage` on every line) for machines; readable
 * lines when a person watches a terminal. Logs go to stderr so stdout stays for results.
 */
export function createLogger(stage: string, level: string): Logger {
  const base = { stage, pid: process.pid };
  if (process.stderr.isTTY && !process.env.FRAMEPIPE_LOG_JSON) {
    return pino({ level, base }, pretty({ destination: 2, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l', sync: true }));
  }
  return pino({ level, base }, pino.destination({ dest: 2, sync: false }));
}
