import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { ConfigError } from '../config/errors.js';
import { SharedMemoryError } from '../protocol/errors.js';

/**
 * Same-host hops without the bytes (`transport.shared_memory`). A 100 KB frame costs a stage
 * pair ~110–170 µs of CPU on a 2-core VM (bench `hop`: kernel copies, zeromq's buffers, V8's
 * external-memory accounting); writing it once to a RAM filesystem and naming it in the job
 * header costs ~40 µs, and a stage that does not look at the pixels (the noop profile, a sink
 * with nothing to draw) never reads it. Triton's system shared memory is the same idea; files
 * in /dev/shm instead of mmap because Node has no mmap without a native addon.
 *
 * Layout: one directory per ingest process, `/dev/shm/framepipe-<pid>-<random>`, holding
 * `<job>.<part>` files. Ingest creates and removes the directory, writes the client's image,
 * and deletes a job's files when it answers the request; stages further on may add a part
 * (detect's decoded pixels) in the same directory, named in the job header `shm`.
 */
export const SHARED_BASE = '/dev/shm';

const DIR_NAME = /^framepipe-(\d+)-[0-9a-f]{8}$/;
/** `<job>.<part>`, or a part being written aside (`<job>.<part>.<pid>.tmp`). */
const PART_FILE = /^(\d+)\./;

/** Whether `dir` is one of framepipe's shared directories (a header names it; never trust it blindly). */
export function isSharedDir(dir: unknown): dir is string {
  return typeof dir === 'string' && path.dirname(dir) === SHARED_BASE && DIR_NAME.test(path.basename(dir));
}

/** Whether this host offers a writable RAM filesystem at SHARED_BASE. */
export function sharedMemoryAvailable(): boolean {
  try {
    fs.accessSync(SHARED_BASE, fs.constants.W_OK);
    return fs.statSync(SHARED_BASE).isDirectory();
  } catch {
    return false;
  }
}

/** Whether a peer at `endpoint` is on this host: ipc://, inproc:// or a loopback address. */
export function isLocalEndpoint(endpoint: string): boolean {
  if (endpoint.startsWith('ipc://') || endpoint.startsWith('inproc://')) return true;
  const host = /^tcp:\/\/(?:[^;]*;)?(\[[^\]]*\]|[^:]*):/.exec(endpoint)?.[1];
  return host !== undefined && (host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host));
}

export interface SharedMemorySettings {
  shared_memory: 'auto' | 'on' | 'off';
  shared_memory_min_bytes: number;
  mode: 'direct' | 'broker';
}

/**
 * Whether the hop to `next` passes parts through shared memory (see `transport.shared_memory`).
 * Throws when it is forced on and this host has no /dev/shm.
 */
export function sharedHop(t: SharedMemorySettings, next: string): boolean {
  if (t.shared_memory === 'off') return false;
  const available = sharedMemoryAvailable();
  if (t.shared_memory === 'on') {
    if (!available) throw new ConfigError(`transport.shared_memory is on, but ${SHARED_BASE} is not a writable directory on this host`);
    return true;
  }
  return available && t.mode === 'direct' && isLocalEndpoint(next);
}

export function partFile(dir: string, job: number, part: string): string {
  return `${dir}/${job}.${part}`;
}

/**
 * The bytes of a part another process on this host wrote. Throws SharedMemoryError when the
 * directory is not framepipe's or the file is missing or not `size` bytes long.
 */
export function readPart(dir: unknown, job: number, part: string, size: number): Buffer {
  if (!isSharedDir(dir)) throw new SharedMemoryError(`job ${job}: ${String(dir)} is not a framepipe shared-memory directory`);
  const file = partFile(dir, job, part);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'it is gone: the request was answered already, or this stage runs on another host than ingest (set transport.shared_memory: off there)'
        : `cannot read it (${code ?? (err as Error).message})`;
    throw new SharedMemoryError(`job ${job}: shared ${part} ${file}: ${why}`, { cause: err });
  }
  if (bytes.length !== size) throw new SharedMemoryError(`job ${job}: shared ${part} ${file} has ${bytes.length} bytes, the header says ${size}`);
  return bytes;
}

/**
 * Writes parts of at least `minBytes` into a job's shared directory. `atomic`: write aside and
 * rename, for stages where two replicas may write the same part (a hedged copy in broker mode),
 * so a reader never sees a half-written file.
 */
export class PartStore {
  constructor(
    readonly minBytes: number,
    private readonly atomic: boolean,
  ) {}

  /** False: not stored (too small, or the job has no shared directory); send it as a frame. */
  put(dir: unknown, job: number, part: string, bytes: Buffer): boolean {
    if (bytes.length < this.minBytes || !isSharedDir(dir)) return false;
    const file = partFile(dir, job, part);
    try {
      if (this.atomic) {
        const aside = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(aside, bytes, { mode: 0o600 });
        fs.renameSync(aside, file);
      } else {
        fs.writeFileSync(file, bytes, { mode: 0o600 });
      }
      return true;
    } catch {
      // Full or gone (the ingest exited): the frame still works.
      return false;
    }
  }
}

/** Ingest's own directory: made at start, emptied job by job, removed at exit. */
export class SharedDir {
  readonly path: string;
  private sweeper?: NodeJS.Timeout;

  private constructor(dir: string) {
    this.path = dir;
  }

  /** Makes this process's directory, after removing those of ingests that died without cleaning up. */
  static create(log: Logger): SharedDir {
    removeOrphans(log);
    const dir = `${SHARED_BASE}/framepipe-${process.pid}-${randomBytes(4).toString('hex')}`;
    fs.mkdirSync(dir, { mode: 0o700 });
    return new SharedDir(dir);
  }

  /** Deletes a job's files once its request is answered (off the event loop: nobody waits for it). */
  release(job: number, parts: readonly string[] = ['image', 'pixels']): void {
    for (const part of parts) {
      try {
        fs.unlinkSync(partFile(this.path, job, part));
      } catch {
        // Never written, or swept already.
      }
    }
  }

  /**
   * Every `everyMs`, deletes the files of jobs no longer pending: a stage can still write a part
   * for a job after ingest answered it (TIMEOUT) and released its files.
   */
  sweepEvery(everyMs: number, pending: (job: number) => boolean): void {
    this.sweeper = setInterval(() => {
      fs.readdir(this.path, (err, names) => {
        if (err) return;
        for (const name of names) {
          const m = PART_FILE.exec(name);
          if (m && !pending(Number(m[1]))) fs.unlink(`${this.path}/${name}`, () => {});
        }
      });
    }, everyMs);
    this.sweeper.unref();
  }

  close(): void {
    clearInterval(this.sweeper);
    fs.rmSync(this.path, { recursive: true, force: true });
  }
}

/** Directories of ingests that are no longer running (killed before they could remove them). */
function removeOrphans(log: Logger): void {
  let names: string[];
  try {
    names = fs.readdirSync(SHARED_BASE);
  } catch {
    return;
  }
  for (const name of names) {
    const m = DIR_NAME.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    fs.rmSync(`${SHARED_BASE}/${name}`, { recursive: true, force: true });
    log.info({ dir: `${SHARED_BASE}/${name}` }, 'removed the shared-memory directory of an ingest that is gone');
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
