// What /proc says about a running stage: its memory (soak) and the CPU time of each of its
// threads (profiling). Linux only; both readers return undefined once the process is gone.
import { readFileSync, readdirSync } from 'node:fs';

export interface MemoryStatus {
  /** VmRSS: resident set now, KiB. */
  rssKiB: number;
  /** VmHWM: the highest resident set so far, KiB. */
  hwmKiB: number;
}

/** VmRSS and VmHWM of a process from /proc/PID/status. */
export function memoryStatus(pid: number): MemoryStatus | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  const status = { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
  // A process that has exited but not been reaped (a zombie) still has a status file, without Vm lines.
  return Number.isFinite(status.rssKiB) ? status : undefined;
}

/** CPU seconds (user + system) per thread name, summed over the threads that share it. */
export type ThreadCpu = Map<string, number>;

const TICKS_PER_SECOND = 100; // USER_HZ: the unit of utime/stime in /proc/PID/task/TID/stat on Linux.

/**
 * CPU time of every thread of a process, grouped by thread name (/proc/PID/task/TID/comm). On
 * Node 20 the main thread and every unnamed helper are all called "node" (libuv's pool, V8's
 * platform workers, onnxruntime's intra-op pool), so the main thread — the one --cpu-prof
 * samples — is reported apart as "(main JS thread)". Named ones: "libvips worker" (sharp),
 * "ZMQbg/IO/0" (zeromq's I/O thread), "v8:ProfEvntProc" (the profiler itself).
 */
export function threadCpu(pid: number): ThreadCpu | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const out: ThreadCpu = new Map();
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // The name in parentheses may hold spaces; the fields after it are fixed.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const seconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // utime, stime
      const name = tid === String(pid) ? '(main JS thread)' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out.set(name, (out.get(name) ?? 0) + seconds);
    } catch {
      // A thread that ended between readdir and read.
    }
  }
  return out;
}

/** Per-name CPU seconds spent between two readings (threads born in between count from 0). */
export function threadCpuDelta(before: ThreadCpu, after: ThreadCpu): ThreadCpu {
  const out: ThreadCpu = new Map();
  for (const [name, s] of after) out.set(name, s - (before.get(name) ?? 0));
  return out;
}
