// What a stage process costs, read from /proc (Linux only): CPU seconds from /proc/PID/stat and
// resident memory from /proc/PID/status. The bench reads them from outside so the stages carry
// no bench-only code, and the numbers include everything the process does (GC, libuv, ORT, vips).
import { readFileSync } from 'node:fs';
import { memoryStatus } from '../scripts/proc-stats.js';

/** Clock ticks per second of utime/stime in /proc/PID/stat: USER_HZ, 100 on every Linux that node supports. */
const USER_HZ = 100;

/** utime + stime of a process (all its threads), in seconds; NaN where /proc is unreadable. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) is parenthesised and may hold spaces: count fields from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After comm, field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return NaN;
  }
}

/** VmRSS (now) and VmHWM (peak so far) of a process, MiB; NaN where /proc is unreadable (the reader is the soak's). */
export function memoryMiB(pid: number): { rss: number; hwm: number } {
  const status = memoryStatus(pid);
  return status ? { rss: status.rssKiB / 1024, hwm: status.hwmKiB / 1024 } : { rss: NaN, hwm: NaN };
}

export interface Watched {
  stage: string;
  pid: number;
}

/** CPU seconds of each watched process since `start()`. */
export function cpuMeter(procs: Watched[]): { start(): void; stop(): Record<string, number> } {
  let before: number[] = [];
  return {
    start() {
      before = procs.map((p) => cpuSeconds(p.pid));
    },
    stop() {
      const out: Record<string, number> = {};
      procs.forEach((p, i) => (out[p.stage] = (out[p.stage] ?? 0) + cpuSeconds(p.pid) - before[i]!));
      return out;
    },
  };
}

export interface RssSummary {
  /** Median of the VmRSS samples taken while the load ran: the steady resident size. */
  median: number;
  max: number;
  /** VmHWM at the end: the peak over the process's whole life, warm-up included. */
  hwm: number;
  samples: number;
}

/** Samples VmRSS of each process every `everyMs` until stop(); a stage with replicas sums them. */
export function rssSampler(procs: Watched[], everyMs = 200): { stop(): Record<string, RssSummary> } {
  const samples = procs.map(() => [] as number[]);
  const take = () => procs.forEach((p, i) => samples[i]!.push(memoryMiB(p.pid).rss));
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      const out: Record<string, RssSummary> = {};
      procs.forEach((p, i) => {
        const s = samples[i]!.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
        const prev = out[p.stage];
        const one = { median: s[Math.floor(s.length / 2)] ?? NaN, max: s[s.length - 1] ?? NaN, hwm: memoryMiB(p.pid).hwm, samples: s.length };
        out[p.stage] = prev ? { median: prev.median + one.median, max: prev.max + one.max, hwm: prev.hwm + one.hwm, samples: prev.samples + one.samples } : one;
      });
      return out;
    },
  };
}
