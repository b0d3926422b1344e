import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../log.js';
import { ConfigError } from '../config/errors.js';
import { BadRequestError, SharedMemoryError } from '../protocol/errors.js';

/**
 * Same-host hops without the bytes (`transport.shared_memory`). A 100 KB frame costs a stage
 * pair ~110–170 µs of CPU on a 2-core VM (bench `hop`: kernel copies, zeromq's buffers, V8's
 * external-memory accounting); writing it once to a RAM filesystem and naming it in the job
 * header costs ~40 µs, and a stage that does not look at the pixels (the noop profile, a sink
 * with nothing to draw) never reads it. Triton's system shared memory is the same idea; files
 * in /dev/shm instead of mmap because Node has no mmap without a native addon.
 *
 * Layout: one directory per ingest process, `/dev/shm/framepipe-<pid>-<random>` (with an
 * `owner` file naming its host), holding `<job>.<part>.<writer>` files. Ingest creates and
 * removes the directory, writes the client's image, and deletes a job's files when it answers
 * the request; stages further on may add a part (detect's decoded pixels) in the same
 * directory, named in the job header `shm`.
 */
export const SHARED_BASE = '/dev/shm';

const DIR_NAME = /^framepipe-(\d+)-[0-9a-f]{8}$/;
/** A client directory whose maker put its pid in the name (ours do): swept if that process is gone. */
const CLIENT_DIR_OF = /^framepipe-client-(\d+)-[A-Za-z0-9._-]{1,80}$/;
/** A part file or one being written aside (`<job>.<part>.<writer>.<pid>.tmp`): its job number. */
const ANY_PART = /^(\d+)\./;
/**
 * The file in each directory that says where the process that made it (ingest, or a client of
 * ours) runs: its host name and pid namespace (ownerTag). A pid in a directory's name means
 * something only to a process that shares both.
 */
const OWNER = 'owner';

/** This process's host name and pid namespace, or undefined where the namespace cannot be read (then nothing is ever swept). */
function ownerTag(): string | undefined {
  try {
    return `${os.hostname()}\n${fs.readlinkSync('/proc/self/ns/pid')}`;
  } catch {
    return undefined;
  }
}

/** Writes `owner` into a directory this process just made: its host name and pid namespace. */
function writeOwner(dir: string): void {
  fs.writeFileSync(`${dir}/${OWNER}`, ownerTag() ?? os.hostname(), { mode: 0o600, flag: 'wx' });
}

/** A directory's `owner`, read without following a link or blocking on a FIFO; undefined if it is not a small regular file. */
function readOwner(dir: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(`${dir}/${OWNER}`, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return undefined;
    const buf = Buffer.alloc(256);
    return buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString();
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

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

/** A part as the job header names it: the file (in the job's shared directory) and its size. */
export interface SharedPart {
  file: string;
  size: number;
}

/**
 * `<job>.<part>.<writer>`: each stage that writes a part writes a file of its own, so a part
 * that changes on the way (a raw BGR frame from ingest, RGB from detect) never replaces the
 * bytes a resent or duplicate copy of the job still names. Replicas of one stage write the same
 * name, with the same bytes (an atomic rename each).
 */
const PART_FILE = /^(\d+)\.(image|pixels)\.(ingest|detect|classify)$/;

/** Whether `file` names a part of `job` as framepipe writes them (checked before any file is opened). */
export function isPartFile(file: unknown, job: number): file is string {
  const m = typeof file === 'string' ? PART_FILE.exec(file) : null;
  return m !== null && Number(m[1]) === job;
}

export type PartWriter = 'ingest' | 'detect' | 'classify';

/** Directories checked to be real directories of this user (not symlinks planted in the world-writable /dev/shm). */
const trusted = new Set<string>();

function trustedDir(dir: unknown): dir is string {
  if (!isSharedDir(dir)) return false;
  if (trusted.has(dir)) return true;
  try {
    const st = fs.lstatSync(dir);
    if (!st.isDirectory() || st.uid !== process.getuid?.()) return false;
  } catch {
    return false;
  }
  // Bounded: one entry per ingest this stage has served.
  if (trusted.size >= 256) trusted.clear();
  trusted.add(dir);
  return true;
}

/**
 * The bytes of a part another process on this host wrote. Throws SharedMemoryError when the
 * directory is not one of framepipe's (or not this user's), the name is not a part of this job,
 * or the file is missing or not `size` bytes long.
 */
export function readPart(dir: unknown, job: number, part: SharedPart): Buffer {
  if (!trustedDir(dir)) {
    throw new SharedMemoryError(
      `job ${job}: ${String(dir)} is not a framepipe shared-memory directory of this user on this host (is this stage on another host than ingest? then set transport.shared_memory: off)`,
    );
  }
  if (!isPartFile(part.file, job)) throw new SharedMemoryError(`job ${job}: ${String(part.file)} is not a part file of this job`);
  const file = `${dir}/${part.file}`;
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'it is gone: the request was answered already, or this stage runs on another host than ingest (set transport.shared_memory: off there)'
        : `cannot read it (${code ?? (err as Error).message})`;
    throw new SharedMemoryError(`job ${job}: shared ${file}: ${why}`, { cause: err });
  }
  try {
    // Sized before reading: a header cannot make a stage read more than it says.
    const actual = fs.fstatSync(fd).size;
    if (actual !== part.size) throw new SharedMemoryError(`job ${job}: shared ${file} has ${actual} bytes, the header says ${part.size}`);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes parts of at least `minBytes` into a job's shared directory, as `<job>.<part>.<writer>`.
 * Stages other than ingest write aside and rename: two replicas may write the same part (a
 * hedged copy in broker mode), and a reader must never see a half-written file.
 */
export class PartStore {
  constructor(
    readonly minBytes: number,
    private readonly writer: PartWriter,
  ) {}

  /** The file's name in `dir`, or undefined: not stored (too small, or no usable shared directory); send it as a frame. */
  put(dir: unknown, job: number, part: string, bytes: Buffer): string | undefined {
    if (bytes.length < this.minBytes || !trustedDir(dir)) return undefined;
    const name = `${job}.${part}.${this.writer}`;
    const file = `${dir}/${name}`;
    try {
      if (this.writer !== 'ingest') {
        const aside = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(aside, bytes, { mode: 0o600 });
        fs.renameSync(aside, file);
      } else {
        // Job numbers are ingest's own and never reused: nobody else writes or reads this name yet.
        fs.writeFileSync(file, bytes, { mode: 0o600 });
      }
      return name;
    } catch {
      // Full, or gone (the ingest exited): the frame still works.
      return undefined;
    }
  }
}

/**
 * Deletes a job's part files (names as the wire gives them: only this job's part files in one of
 * framepipe's directories of this user are touched). Synchronous: an unlink is a few µs, and
 * libuv's pool costs more than that to hand it over and back.
 */
export function deleteParts(dir: unknown, job: number, files: readonly string[]): void {
  if (files.length === 0 || !trustedDir(dir)) return;
  for (const name of files) {
    if (!isPartFile(name, job)) continue;
    try {
      fs.unlinkSync(`${dir}/${name}`);
    } catch {
      // Gone already (deleted by whoever answered, or swept).
    }
  }
}

/**
 * A client's image in shared memory (request header `shm`): `<dir>/<file>`, where `dir` is a
 * `framepipe-client-…` directory directly in /dev/shm that only its owner can open (0700), and
 * `file` a name in it that nobody else can guess (our clients: 96 random bits per file). The
 * prefix keeps a request from naming anything else there (another program's shared memory,
 * ingest's own directories); the private directory keeps other users of the host from listing
 * the file names, so they cannot name a client's file in a request of their own; the owner
 * checks keep ingest from taking another user's files.
 */
const CLIENT_DIR = /^framepipe-client-[A-Za-z0-9._-]{1,100}$/;
const CLIENT_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/** Our clients' file names: random bytes (hex), drawn for this many names at a time. */
const NAME_BYTES = 12;
const NAMES_PER_DRAW = 256;

function clientPath(name: string): string {
  return `${SHARED_BASE}/${name}`;
}

/**
 * The size of the client file a request names in `shm`, after checking it may be taken: the
 * name's form, a private directory and a regular file (not symlinks), both owned by the user
 * ingest runs as, one link. Throws BadRequestError naming what is wrong; touches nothing.
 */
export function clientFileSize(name: string): number {
  const [dir, file, ...rest] = name.split('/');
  if (rest.length > 0 || !dir || !file || !CLIENT_DIR.test(dir) || !CLIENT_FILE.test(file) || file === OWNER) {
    throw new BadRequestError(
      `header field 'shm': ${JSON.stringify(name)} is not a client file name (DIR/FILE: DIR a framepipe-client-… directory directly in ${SHARED_BASE}, FILE a name in it other than ${OWNER}; letters, digits, '.', '_' or '-')`,
    );
  }
  const uid = process.getuid?.();
  const dirStat = lstatOrFail(clientPath(dir), name);
  if (!dirStat.isDirectory() || dirStat.uid !== uid || (dirStat.mode & 0o077) !== 0) {
    throw badClientFile(name, `${dir} must be a private directory (mode 0700, not a symlink) of the user ingest runs as`);
  }
  const st = lstatOrFail(clientPath(name), name);
  if (!st.isFile()) throw badClientFile(name, 'not a regular file');
  if (st.uid !== uid) throw badClientFile(name, 'not owned by the user ingest runs as');
  if (st.nlink !== 1) throw badClientFile(name, `has ${st.nlink} links; ingest takes only a file with one name`);
  return st.size;
}

// Module-level, not closures in the functions above and below: those run for every request.
function badClientFile(name: string, what: string): BadRequestError {
  return new BadRequestError(`header field 'shm': ${clientPath(name)}: ${what}`);
}

function lstatOrFail(path: string, name: string): fs.Stats {
  try {
    return fs.lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BadRequestError(
      code === 'ENOENT'
        ? `header field 'shm': ${clientPath(name)} does not exist on ingest's host (a client on another host, or in a container with its own /dev/shm, sends the image as frame 2)`
        : `header field 'shm': cannot look at ${clientPath(name)} (${code ?? (err as Error).message})`,
    );
  }
}

/**
 * Ingest takes a client's file over as part `part` of `job`, when the job enters the pipeline:
 * with a shared directory, one rename moves it there (same RAM filesystem: no byte is copied)
 * and the job names it like any part ingest wrote; without one (the first hop is on another
 * host), its bytes are read and the file deleted. Either way the client's name is gone after.
 * Throws BadRequestError if the file cannot be taken or changed since the request was parsed.
 */
export function adoptClientFile(
  name: string,
  size: number,
  dir: SharedDir | undefined,
  job: number,
  part: 'image' | 'pixels',
): { shared: SharedPart } | { bytes: Buffer } {
  const from = clientPath(name);
  if (dir) {
    const file = `${job}.${part}.ingest`;
    const to = `${dir.path}/${file}`;
    let st: fs.Stats;
    try {
      fs.renameSync(from, to);
      // Checked again where nobody else can swap it: the directory is ingest's own (0700).
      st = fs.lstatSync(to);
    } catch (err) {
      throw cannotTake(from, err);
    }
    if (!unchanged(st, size)) {
      fs.rmSync(to, { force: true });
      throw changed(from, st, size);
    }
    return { shared: { file, size } };
  }
  let fd: number;
  try {
    fd = fs.openSync(from, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    throw cannotTake(from, err);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!unchanged(st, size)) throw changed(from, st, size);
    const bytes = fs.readFileSync(fd);
    fs.rmSync(from, { force: true });
    return { bytes };
  } finally {
    fs.closeSync(fd);
  }
}

function cannotTake(from: string, err: unknown): BadRequestError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'it went away before ingest took it' : `ingest could not take it (${code ?? (err as Error).message})`;
  return new BadRequestError(`header field 'shm': ${from}: ${why}`, { cause: err });
}

function unchanged(st: fs.Stats, size: number): boolean {
  return st.isFile() && st.uid === process.getuid?.() && st.nlink === 1 && st.size === size;
}

function changed(from: string, st: fs.Stats, size: number): BadRequestError {
  return new BadRequestError(`header field 'shm': ${from} changed while ingest took it (${st.isFile() ? `${st.size} bytes, was ${size}` : 'not a regular file'})`);
}

/**
 * Client side of `shm`: one private directory per client (made on first use, removed by
 * close()), a new randomly named file in it per image. After a reply, remove() what ingest did
 * not take (a request answered before its job went in: OVERLOADED, SKIPPED, BAD_REQUEST).
 */
export class ClientFiles {
  private dir?: string;
  /** Random bytes for file names, drawn NAMES_PER_DRAW names at a time. */
  private pool = Buffer.alloc(0);
  private used = 0;

  /** The request's `shm` name, or undefined when the image cannot be written (e.g. /dev/shm full): send it as a frame then. */
  write(bytes: Uint8Array): string | undefined {
    let name: string | undefined;
    let fd: number | undefined;
    try {
      // mkdtemp makes it 0700: nobody else can list the names inside.
      this.dir ??= ClientFiles.makeDir();
      name = `${this.dir}/${this.randomName()}`;
      // wx: a new file, never one someone else made.
      fd = fs.openSync(clientPath(name), 'wx', 0o600);
      fs.writeFileSync(fd, bytes);
      return name;
    } catch {
      // Only a file this call made (it opened it): never someone else's under the same name.
      if (fd !== undefined) this.remove(name!);
      return undefined;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  /**
   * 96 random bits per file, in hex. The directory's name is public (anyone can list /dev/shm)
   * and ingest takes any file there that a request names, so the file's name is what keeps
   * another client from naming this one's image; and a name seen once (in a log, an error
   * message) must say nothing of the next. Drawn in bulk: a randomBytes call per file cost the
   * client more than the file's open.
   */
  private randomName(): string {
    if (this.used + NAME_BYTES > this.pool.length) {
      this.pool = randomBytes(NAME_BYTES * NAMES_PER_DRAW);
      this.used = 0;
    }
    this.used += NAME_BYTES;
    return this.pool.toString('hex', this.used - NAME_BYTES, this.used);
  }

  /**
   * The directory, with its host and pid namespace in `owner`: if this process dies before
   * close(), an ingest on this host removes it (sweepDeadClients).
   */
  private static makeDir(): string {
    const dir = fs.mkdtempSync(`${SHARED_BASE}/framepipe-client-${process.pid}-`);
    try {
      writeOwner(dir);
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return path.basename(dir);
  }

  remove(name: string): void {
    try {
      fs.unlinkSync(clientPath(name));
    } catch {
      // Taken over by ingest: the usual case.
    }
  }

  /** Removes the directory and whatever is still in it. */
  close(): void {
    if (this.dir) fs.rmSync(clientPath(this.dir), { recursive: true, force: true });
    this.dir = undefined;
  }
}

/** Ingest's own directory: made at start, emptied job by job, removed at exit. */
export class SharedDir {
  readonly path: string;
  private sweeper?: NodeJS.Timeout;

  private constructor(
    dir: string,
    private readonly log: Logger,
  ) {
    this.path = dir;
  }

  /** Makes this process's directory, after removing those of ingests that died without cleaning up. */
  static create(log: Logger): SharedDir {
    removeOrphans(log);
    const dir = newDirPath();
    fs.mkdirSync(dir, { mode: 0o700 });
    // Whose it is: another host's or pid namespace's (a container that shares /dev/shm) is never "orphaned" here.
    writeOwner(dir);
    return new SharedDir(dir, log);
  }

  /** Deletes a job's files once its request is answered (deleteParts). */
  release(job: number, files: readonly string[]): void {
    deleteParts(this.path, job, files);
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
          const m = ANY_PART.exec(name);
          if (m && !pending(Number(m[1]))) fs.unlink(`${this.path}/${name}`, () => {});
        }
      });
    }, everyMs);
    this.sweeper.unref();
  }

  close(): void {
    clearInterval(this.sweeper);
    const err = removeOwnedDir(this.path);
    if (err) this.log.warn({ dir: this.path, err: err.message }, 'could not remove the shared-memory directory; an ingest on this host will once this process is gone');
  }
}

/** Directories of ingests that are no longer running (killed before they could remove them). */
function removeOrphans(log: Logger): void {
  for (const dir of deadDirs(DIR_NAME)) removeDir(dir, 'an ingest', log);
}

/**
 * Removes the directories (and any images still in them) of clients on this host that died
 * before close(): at once, then every `everyMs` while ingest runs. Only directories named with
 * the client's pid and whose `owner` shows this host and pid namespace (ours: ClientFiles, the
 * Python SharedFiles) are ever touched; a by-hand client's directory stays its own business.
 * Returns the function that stops the sweeping.
 */
export function sweepDeadClients(everyMs: number, log: Logger): () => void {
  const sweep = (): void => {
    for (const dir of deadDirs(CLIENT_DIR_OF)) removeDir(dir, 'a client', log);
  };
  sweep();
  const timer = setInterval(sweep, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Removes one of our shared directories (its `owner` names this host and pid namespace); the error
 * if it could not. A stage may still write a late part into an ingest's directory while it goes
 * (a result after the drain), and rm -r lists a directory once: a file made after that listing
 * failed it with ENOTEMPTY — after `owner` was gone, leaving a directory no sweep would judge. So
 * the directory first moves to a name of this process's no stage knows (their late writes fail
 * with ENOENT, as for a directory already gone), and only then goes; if it still cannot, it gets
 * its `owner` back, so the next sweep on this host removes it.
 */
function removeOwnedDir(dir: string): Error | undefined {
  let target = dir;
  try {
    const aside = newDirPath();
    fs.renameSync(dir, aside);
    target = aside;
  } catch {
    // Gone already, or not ours to move: rm -r says which.
  }
  try {
    fs.rmSync(target, { recursive: true, force: true });
    return undefined;
  } catch (err) {
    try {
      writeOwner(target);
    } catch {}
    return err as Error;
  }
}

/** A new name for a shared directory of this process (DIR_NAME: the sweep knows it by its pid). */
function newDirPath(): string {
  return `${SHARED_BASE}/framepipe-${process.pid}-${randomBytes(4).toString('hex')}`;
}

function removeDir(dir: string, whose: string, log: Logger): void {
  const err = removeOwnedDir(dir);
  // Something in it this user may not delete: leave it, and never let a sweep take ingest down.
  if (err) log.warn({ dir, err: err.message }, `could not remove the shared-memory directory of ${whose} that is gone`);
  else log.info({ dir }, `removed the shared-memory directory of ${whose} that is gone`);
}

/**
 * Paths of directories in SHARED_BASE named by `pattern` (group 1: the maker's pid) whose maker
 * is no longer running: real directories of this user whose `owner` names this host and pid
 * namespace — a pid means nothing in another one (a container sharing /dev/shm, even under the
 * same host name), and a directory whose `owner` is not written yet is still being made.
 */
function deadDirs(pattern: RegExp): string[] {
  const mine = ownerTag();
  if (mine === undefined) return [];
  let names: string[];
  try {
    names = fs.readdirSync(SHARED_BASE);
  } catch {
    return [];
  }
  const dead: string[] = [];
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const dir = `${SHARED_BASE}/${name}`;
    try {
      const st = fs.lstatSync(dir);
      if (!st.isDirectory() || st.uid !== process.getuid?.()) continue;
    } catch {
      continue;
    }
    if (readOwner(dir) === mine) dead.push(dir);
  }
  return dead;
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
