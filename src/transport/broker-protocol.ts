import os from 'node:os';
import { Packr } from 'msgpackr';

/**
 * Frames between the broker and the processes that connect to it (docs/architecture.md). Every
 * message starts with one command frame; the rest is the command's body. Replicas and ingests
 * talk over one DEALER each, so no empty delimiter frame is used.
 *
 * replica → broker: READY {info}, HB {info}, DONE ...job (or, from a sink, origin + result), FREE [JobMeta], BYE
 * broker → replica: JOB ...job, HB
 * ingest → broker:  JOB ...job, HB {info}, STATUS
 * broker → ingest:  RESULT ...result, HB bootId, STATUS {json}
 */
export const Cmd = {
  /** A replica joins: its info carries `credit`, the jobs it takes at once. */
  READY: 'READY',
  /** Liveness, both directions. From a peer the broker does not know, it is a registration. */
  HB: 'HB',
  /** A job: ingest → broker, broker → replica. */
  JOB: 'JOB',
  /** A replica finished a job: the job for the next hop (or a sink's result); returns one credit. */
  DONE: 'DONE',
  /** A replica dropped a job (expired, malformed): returns one credit, nothing to forward; its JobMeta frame, if sent, names the job. */
  FREE: 'FREE',
  /** A replica leaves on purpose: out of dispatch at once. */
  BYE: 'BYE',
  /** broker → ingest: a finished request. */
  RESULT: 'RESULT',
  /** Ask the broker for its table of live peers (framepipe status). */
  STATUS: 'STATUS',
} as const;
export type Cmd = (typeof Cmd)[keyof typeof Cmd];

const cmdFrames = new Map<string, Buffer>(Object.values(Cmd).map((c) => [c, Buffer.from(c)]));
export const cmdFrame = (cmd: Cmd): Buffer => cmdFrames.get(cmd)!;

/** What a replica or an ingest says about itself in READY and HB. */
export interface PeerInfo {
  stage: string;
  host: string;
  pid: number;
  /** Jobs it can take right now (concurrency minus jobs it holds). */
  credit: number;
  concurrency: number;
  /** Jobs finished since it started. */
  done: number;
}

const packr = new Packr({ useRecords: false, moreTypes: false });
export const encodeInfo = (info: PeerInfo): Buffer => packr.pack(info);
export function decodeInfo(frame: Buffer | undefined): PeerInfo | undefined {
  if (!frame) return undefined;
  try {
    const info = packr.unpack(frame) as PeerInfo;
    return info && typeof info === 'object' && typeof info.credit === 'number' ? info : undefined;
  } catch {
    return undefined;
  }
}

/** A name unique to this process, stable across reconnects: the broker's key for it. */
export function peerName(stage: string): string {
  return `${stage}-${os.hostname()}-${process.pid}`;
}

/** One live peer as `framepipe status` shows it. */
export interface PeerStatus {
  stage: string;
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  /** Jobs it may still be given now. */
  credit: number;
  done: number;
  /** Jobs finished per second, smoothed over a few heartbeats. */
  rate: number;
  /** Mean time from dispatch to DONE, ms (replicas only). */
  serviceMs: number;
  lastSeenMs: number;
}

export interface BrokerStatus {
  pid: number;
  host: string;
  queued: Record<string, number>;
  peers: PeerStatus[];
  /** The broker's counters since it started (jobs, dispatched, results, expired, requeued, duplicates, hedged). */
  stats?: Record<string, number>;
}
