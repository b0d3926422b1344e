import { createServer } from 'node:net';

/** A metrics base port whose five process ports (base … base+4) are free right now. */
export async function freeMetricsBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below Linux's ephemeral range (32768 and up): a port the kernel may hand to any outgoing
    // connection — the stages' own among them — between this check and the stage's bind.
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await Promise.all([0, 1, 2, 3, 4].map((i) => portFree(base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error('no free metrics base port');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function getText(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

/** The value of one series in Prometheus text, e.g. `framepipe_jobs_total{outcome="ok",stage="detect"}`. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
