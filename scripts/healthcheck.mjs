#!/usr/bin/env node
// Container health check: exit 0 when this container's framepipe process answers 200 on /readyz
// (or /healthz with `--live`). One process runs per container, on the metrics port of its stage
// (base + 0..4, docs/operations.md), so the first port that answers is the one.
const base = Number(process.env.FRAMEPIPE_METRICS__PORT ?? 9460);
const path = process.argv.includes('--live') ? '/healthz' : '/readyz';
for (let offset = 0; offset <= 4; offset++) {
  try {
    const res = await fetch(`http://127.0.0.1:${base + offset}${path}`, { signal: AbortSignal.timeout(2000) });
    process.exit(res.ok ? 0 : 1);
  } catch {
    // Nothing on this port: try the next stage's.
  }
}
process.exit(1);
