import cliProgress from 'cli-progress';

export interface Progress {
  tick(): void;
  stop(): void;
}

/**
 * Progress of a long run (folder inference, a benchmark's load): a bar with rate and ETA on a
 * terminal, a plain line every 5 s otherwise (CI logs, pipes), nothing when not `wanted`.
 */
export function createProgress(total: number, unit: string, wanted = true): Progress {
  if (!wanted || total < 2) return { tick() {}, stop() {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `{bar} {value}/{total} ${unit} | {rate}/s | ETA {eta_formatted}`, stream: process.stderr, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    const t0 = performance.now();
    let n = 0;
    bar.start(total, 0, { rate: '0.0' });
    return {
      tick() {
        n++;
        bar.update(n, { rate: (n / ((performance.now() - t0) / 1000)).toFixed(1) });
      },
      stop() {
        bar.stop();
      },
    };
  }
  // Not a terminal (CI logs, pipes): a plain line every 5 s instead of a redrawn bar.
  const t0 = performance.now();
  let n = 0;
  let last = t0;
  return {
    tick() {
      n++;
      const now = performance.now();
      if (now - last >= 5000) {
        last = now;
        const rate = n / ((now - t0) / 1000);
        console.error(`${n}/${total} ${unit}, ${rate.toFixed(1)}/s, ETA ${Math.round((total - n) / rate)} s`);
      }
    },
    stop() {},
  };
}

