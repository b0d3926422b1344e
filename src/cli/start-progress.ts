import type { StageProcess } from './launcher.js';

const WIDTH = 20;

/**
 * Progress of a starting pipeline (models loading, sockets binding): one line each time a stage
 * is ready, with a bar, the time since start and who is still loading. Lines, not a redrawn
 * bar, because the stages write their own log lines to the same terminal meanwhile.
 */
export function startProgress(expected: string[], write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)) {
  const t0 = performance.now();
  const waiting = [...expected];
  return (proc: StageProcess) => {
    const i = waiting.indexOf(proc.stage);
    if (i >= 0) waiting.splice(i, 1);
    const done = expected.length - waiting.length;
    const filled = Math.round((WIDTH * done) / expected.length);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    const rest = waiting.length ? `; loading ${waiting.join(', ')}` : '';
    write(`framepipe: [${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}] ${done}/${expected.length} ready after ${secs} s (${proc.stage}${rest})`);
  };
}
