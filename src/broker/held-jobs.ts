import { Packr } from 'msgpackr';

/**
 * What the broker remembers of every job it handed to a replica, so that nothing is lost when
 * the replica dies and nothing is answered twice when a replica written off as dead finishes
 * after all.
 *
 * A job is named by its request (`origin#job`, the ingest's routing id and its sequence number)
 * and the hop it is on. The rules:
 * - dispatch records the replica as the job's owner and keeps the frames it was sent;
 * - DONE or FREE from the owner settles it;
 * - a replica that dies (missed heartbeats), leaves (BYE) or re-announces itself hands back its
 *   jobs: those still before their deadline go back to the front of the hop's queue, owner none;
 * - the first DONE for a job wins, whoever sends it; the other copy is then superseded: taken
 *   out of the queue if it waits there, or its DONE dropped on arrival if another replica has it;
 * - a job may be hedged: a second replica gets a copy while the owner still works on it (the
 *   broker does so when an idle replica would finish it clearly earlier); it is then settled by
 *   whichever answers first, and if one of the two dies the other simply keeps it;
 * - a DONE for a job the broker never saw (it restarted meanwhile) is passed on: ingest answers
 *   each request once anyway.
 */
interface Held {
  frames: Buffer[];
  deadline: number;
  /** The replica holding it, or null while it waits in the queue again. */
  owner: string | null;
  /** When the owner got it, epoch ms. */
  sentAt: number;
  /** A second replica working on a copy (a hedge), if any. */
  hedge?: string;
}

/** A job out at one replica only: what the broker weighs when it considers a hedge. */
export interface Outstanding {
  key: string;
  owner: string;
  sentAt: number;
  frames: Buffer[];
}

export type SettleVerdict = 'forward' | 'duplicate';

const packr = new Packr({ useRecords: false, moreTypes: false });

function unpack(frame: Buffer | undefined): Record<string, unknown> | undefined {
  if (!frame) return undefined;
  try {
    const v = packr.unpack(frame) as unknown;
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** `origin#job` and the deadline of a job's frames (`[JobMeta, ...parts]`); undefined if unreadable. */
export function jobKey(frames: Buffer[]): { key: string; deadline: number } | undefined {
  const meta = unpack(frames[0]);
  if (!meta || typeof meta.job !== 'number' || typeof meta.origin !== 'string') return undefined;
  return { key: `${meta.origin}#${meta.job}`, deadline: typeof meta.deadline === 'number' ? meta.deadline : Infinity };
}

/** `origin#job` of a sink's DONE body (`[origin, ResultMeta, reply]`). */
export function resultKey(body: Buffer[]): string | undefined {
  const meta = unpack(body[1]);
  if (!body[0] || !meta || typeof meta.job !== 'number') return undefined;
  return `${body[0].toString()}#${meta.job}`;
}

/** Superseded copies remembered at most (a copy whose holder also died never shows up). */
const MAX_SUPERSEDED = 10_000;

export class HeldJobs {
  private readonly held = new Map<string, Held>();
  private readonly superseded = new Set<string>();

  get size(): number {
    return this.held.size;
  }

  /** A job was sent to `owner` (frames as sent, after the command frame). */
  dispatched(hop: string, owner: string, frames: Buffer[], now = Date.now()): void {
    const id = jobKey(frames);
    // Unreadable: the replica will drop it and FREE the credit; nothing to hand back.
    if (id) this.held.set(`${hop}|${id.key}`, { frames, deadline: id.deadline, owner, sentAt: now });
  }

  /** Jobs on `hop` held by exactly one replica, before their deadline: hedge candidates. */
  *outstanding(hop: string, now = Date.now()): Generator<Outstanding> {
    const prefix = `${hop}|`;
    for (const [k, entry] of this.held) {
      if (entry.owner === null || entry.hedge !== undefined || now > entry.deadline || !k.startsWith(prefix)) continue;
      yield { key: k.slice(prefix.length), owner: entry.owner, sentAt: entry.sentAt, frames: entry.frames };
    }
  }

  /** `peer` got a copy of job `key` on `hop`, which its owner still holds. */
  hedged(hop: string, key: string, peer: string): void {
    const entry = this.held.get(`${hop}|${key}`);
    if (entry && entry.owner !== null && entry.owner !== peer) entry.hedge = peer;
  }

  /**
   * A DONE or FREE from `peer` for job `key` on `hop`: pass a DONE on, or drop it as a
   * duplicate. `queued` is the copy waiting in the hop's queue again, if any: the caller takes
   * it out, since this answer made it redundant.
   */
  settle(hop: string, peer: string, key: string | undefined): { verdict: SettleVerdict; queued?: Buffer[] } {
    if (key === undefined) return { verdict: 'forward' };
    const k = `${hop}|${key}`;
    const entry = this.held.get(k);
    if (entry) {
      this.held.delete(k);
      if (entry.owner === null) return { verdict: 'forward', queued: entry.frames };
      // Another replica holds the other copy (the owner, or the hedge): its answer must not count twice.
      if (entry.owner !== peer || (entry.hedge !== undefined && entry.hedge !== peer)) this.supersede(k);
      return { verdict: 'forward' };
    }
    return { verdict: this.superseded.delete(k) ? 'duplicate' : 'forward' };
  }

  /**
   * The jobs `peer` held on `hop`, handed back because it is gone: frames of those still before
   * their deadline, oldest dispatch first, to go back to the front of the queue.
   */
  orphaned(hop: string, peer: string, now = Date.now()): Buffer[][] {
    const back: Buffer[][] = [];
    const prefix = `${hop}|`;
    for (const [k, entry] of this.held) {
      if (!k.startsWith(prefix)) continue;
      if (entry.hedge === peer) {
        // The owner still works on it; nothing to hand back.
        delete entry.hedge;
        continue;
      }
      if (entry.owner !== peer) continue;
      if (entry.hedge !== undefined) {
        // The hedge becomes the owner: the job is still being worked on.
        entry.owner = entry.hedge;
        delete entry.hedge;
        continue;
      }
      if (now > entry.deadline) {
        this.held.delete(k);
        continue;
      }
      entry.owner = null;
      back.push(entry.frames);
    }
    return back;
  }

  /** Forgets jobs long past their deadline (an answer lost on the way): bounds memory. */
  sweep(now: number, graceMs: number): void {
    for (const [k, entry] of this.held) if (now > entry.deadline + graceMs) this.held.delete(k);
  }

  private supersede(k: string): void {
    if (this.superseded.size >= MAX_SUPERSEDED) this.superseded.delete(this.superseded.values().next().value!);
    this.superseded.add(k);
  }
}
