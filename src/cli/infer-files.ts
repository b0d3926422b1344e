import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Client, ClientTimeoutError, type CurveClientOptions } from '../client/client.js';
import type { Reply } from '../protocol/types.js';
import { formatReply } from './format.js';
import { createProgress } from './progress.js';

export interface InferFilesOptions {
  timeout: number;
  inflight: number;
  /** Print raw replies as JSON lines on stdout. */
  json?: boolean;
  /** Write JSON lines to this file instead of printing results. */
  out?: string;
  /** Write annotated JPEGs into this folder. */
  annotate?: string;
  /** CURVE keys, for a pipeline with security.curve on. */
  curve?: CurveClientOptions;
  /** Hand each image to ingest as a file in /dev/shm (same host only). */
  sharedMemory?: boolean;
  /** Expected text per file name, printed under each result (the demo). */
  expected?: Record<string, string[]>;
}

export interface InferSummary {
  count: number;
  errors: Record<string, number>;
  seconds: number;
}

/**
 * Sends files through the pipeline with `inflight` requests in flight, reading each file only
 * when its turn comes (a folder of 100 000 frames must not be loaded at once), and reports the
 * results in the order given. Long runs show a progress bar with rate and ETA on a terminal,
 * and a plain line every few seconds otherwise.
 */
export async function inferFiles(endpoint: string, files: string[], opts: InferFilesOptions): Promise<InferSummary> {
  if (opts.annotate) mkdirSync(opts.annotate, { recursive: true });
  const out = opts.out ? createWriteStream(opts.out) : undefined;
  const quietResults = Boolean(out);
  const progress = createProgress(files.length, 'images', quietResults || Boolean(opts.json));
  const client = new Client(endpoint, { timeoutMs: opts.timeout, window: opts.inflight, sharedMemory: opts.sharedMemory ?? false, ...opts.curve });
  const errors: Record<string, number> = {};
  const done = new Map<number, Reply>();
  let nextToSend = 0;
  let nextToReport = 0;
  const t0 = performance.now();

  const report = (i: number, reply: Reply) => {
    const file = files[i]!;
    // As the user wrote it (folders expanded): that is the name they will look for in the output.
    const name = file;
    if (!reply.ok) errors[reply.error.code] = (errors[reply.error.code] ?? 0) + 1;
    if (opts.annotate && reply.ok && reply.annotated) {
      writeFileSync(path.join(opts.annotate, `${path.parse(file).name}.annotated.jpg`), reply.annotated);
      delete reply.annotated;
    }
    if (out || opts.json) {
      const line = JSON.stringify({ file: name, ...reply }, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v));
      if (out) out.write(`${line}\n`);
      else console.log(line);
    } else {
      console.log(formatReply(name, reply));
      const want = opts.expected?.[path.basename(file)];
      if (want) console.log(`  expected: ${want.map((l) => `"${l}"`).join(' ')}`);
    }
    progress.tick();
  };

  const worker = async () => {
    while (nextToSend < files.length) {
      const i = nextToSend++;
      let reply: Reply;
      try {
        reply = await client.infer(await readFile(files[i]!), opts.annotate ? { annotate: true } : {});
      } catch (err) {
        // A file that cannot be read never reached the pipeline; only a client-side timeout is a TIMEOUT.
        const code = err instanceof ClientTimeoutError ? 'TIMEOUT' : 'BAD_REQUEST';
        reply = { id: null, ok: false, error: { code, message: (err as Error).message } };
      }
      done.set(i, reply);
      while (done.has(nextToReport)) {
        report(nextToReport, done.get(nextToReport)!);
        done.delete(nextToReport++);
      }
    }
  };
  // Interrupted (Ctrl-C): close the client first, so no image file is left in /dev/shm.
  const interrupted = (signal: NodeJS.Signals) => void client.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  const signals = ['SIGINT', 'SIGTERM'] as const;
  if (opts.sharedMemory) for (const sig of signals) process.once(sig, interrupted);
  try {
    await Promise.all(Array.from({ length: Math.min(opts.inflight, files.length) }, worker));
  } finally {
    for (const sig of signals) process.off(sig, interrupted);
    await client.close();
    progress.stop();
    if (out) await new Promise((r) => out.end(r));
  }
  return { count: files.length, errors, seconds: (performance.now() - t0) / 1000 };
}

export function formatSummary(s: InferSummary): string {
  const failed = Object.values(s.errors).reduce((a, b) => a + b, 0);
  const byCode = Object.entries(s.errors).map(([code, n]) => `${code} ${n}`).join(', ');
  return `${s.count} image(s), ${failed} error(s)${byCode ? ` (${byCode})` : ''}, ${(s.count / s.seconds).toFixed(1)} images/s`;
}
