/**
 * Where each process serves its metrics: `metrics.port` + the process's offset, so the four
 * stages and the broker of one host never collide. A second replica of the same stage on the
 * same host finds its port taken and moves up by `SLOT_STRIDE` (at most `SLOTS` replicas per
 * stage per host). The dashboard scans exactly these ports.
 */
export const METRICS_OFFSETS = { ingest: 0, detect: 1, classify: 2, sink: 3, broker: 4 } as const;
export type MeteredProcess = keyof typeof METRICS_OFFSETS;
export const SLOT_STRIDE = 10;
export const SLOTS = 8;

export function metricsPort(base: number, process: MeteredProcess, slot = 0): number {
  return base + METRICS_OFFSETS[process] + slot * SLOT_STRIDE;
}

/** Every port a process of any kind may serve metrics on, for a given base. */
export function allMetricsPorts(base: number): { process: MeteredProcess; port: number }[] {
  const out: { process: MeteredProcess; port: number }[] = [];
  for (let slot = 0; slot < SLOTS; slot++) {
    for (const process of Object.keys(METRICS_OFFSETS) as MeteredProcess[]) out.push({ process, port: metricsPort(base, process, slot) });
  }
  return out;
}
