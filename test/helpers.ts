import path from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { freePorts, loopbackTransport } from '../src/transport/ports.js';
import { launchPipeline, type LaunchOptions, type Pipeline } from '../src/cli/launcher.js';
import { decodeReply, encodeHeader } from '../src/protocol/request.js';
import type { Reply } from '../src/protocol/types.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const sharedDir = path.resolve(repoRoot, '../shared');
export const hasShared = existsSync(path.join(sharedDir, 'models', 'MANIFEST.md'));

export { freePorts };

/** `--set` flags that put every hop of one pipeline on its own free loopback ports. */
export const transportSets = loopbackTransport;

export interface TestPipeline extends Pipeline {
  sets: string[];
}

/** Starts real stage processes on free ports; stop() in an after hook. */
export async function startPipeline(profile: string, sets: string[] = [], extra: Partial<LaunchOptions> = {}): Promise<TestPipeline> {
  const all = [...(await transportSets()), ...sets];
  const pipeline = await launchPipeline({ flags: { profile, set: all }, stdio: 'pipe', readyTimeoutMs: 60_000, ...extra });
  return Object.assign(pipeline, { sets: all });
}

/** A REQ round trip with a receive timeout, so a missing reply fails the test instead of hanging it. */
export async function reqOnce(endpoint: string, frames: Buffer[], timeoutMs = 10_000): Promise<Reply> {
  const req = new zmq.Request({ linger: 0, receiveTimeout: timeoutMs });
  req.connect(endpoint);
  try {
    await req.send(frames);
    const [reply] = await req.receive();
    return decodeReply(reply!);
  } finally {
    req.close();
  }
}

export const header = (fields: Record<string, unknown>): Buffer => encodeHeader(fields);

/** Collects every reply a DEALER gets within `ms`. */
export async function collect(dealer: zmq.Dealer, ms: number): Promise<Buffer[][]> {
  const out: Buffer[][] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    dealer.receiveTimeout = Math.max(1, until - Date.now());
    try {
      out.push(await dealer.receive());
    } catch {
      break;
    }
  }
  return out;
}

/**
 * Polls `check` every `everyMs` until it holds; throws naming `what` after `ms`. Tests wait on a
 * condition like this, not on a fixed sleep: a loaded host then makes a test slower, not red.
 */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 10_000, everyMs = 10): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Whether a process with this pid still exists (signal 0 checks without signalling). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
