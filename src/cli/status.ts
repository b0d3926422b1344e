import * as zmq from 'zeromq';
import { Collector, type ProcessRow } from '../dashboard/collector.js';
import { Cmd, type BrokerStatus } from '../transport/broker-protocol.js';
import type { StageKeys } from '../security/keys.js';
import { connectHop } from '../transport/sockets.js';
import { sendPatiently } from '../transport/writer.js';

/** Asks a broker (at its ingest endpoint) for its table of live peers. */
export async function fetchStatus(endpoint: string, timeoutMs: number, curve?: StageKeys): Promise<BrokerStatus> {
  const dealer = new zmq.Dealer({ linger: 0, receiveTimeout: timeoutMs, sendTimeout: timeoutMs });
  // With security.stages, the broker lets in only holders of the pipeline's key pair.
  connectHop(dealer, endpoint, curve);
  const noAnswer = () => new Error(`no answer from a broker at ${endpoint} within ${timeoutMs} ms (is it running, in broker mode?)`);
  try {
    await sendPatiently(dealer, [Buffer.from(Cmd.STATUS)]).catch(() => {
      throw noAnswer();
    });
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await dealer.receive();
      } catch {
        throw noAnswer();
      }
      if (frames[0]?.toString() === Cmd.STATUS) return JSON.parse(frames[1]!.toString()) as BrokerStatus;
    }
  } finally {
    dealer.close();
  }
}

/** One line per live peer, grouped by stage in pipeline order. */
export function formatStatus(status: BrokerStatus): string {
  const order = ['ingest', 'detect', 'classify', 'sink'];
  const peers = [...status.peers].sort((a, b) => order.indexOf(a.stage) - order.indexOf(b.stage) || a.id.localeCompare(b.id));
  const rows = [['stage', 'host', 'pid', 'concurrency', 'credit', 'done', 'rate/s', 'service ms', 'seen ms ago']];
  for (const p of peers) rows.push([p.stage, p.host, String(p.pid), String(p.concurrency), String(p.credit), String(p.done), p.rate.toFixed(1), p.serviceMs.toFixed(1), String(p.lastSeenMs)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  const queued = Object.entries(status.queued).map(([hop, n]) => `${hop} ${n}`).join(', ');
  return [`broker ${status.host} pid ${status.pid}; queued: ${queued}`, ...lines].join('\n');
}

/**
 * Direct mode has no broker to ask, so status reads what the dashboard reads: every process's
 * /stats.json on this host's metrics ports (the same port rule), sampled twice a second apart so
 * rates and percentiles cover a real window.
 */
export async function processStatus(host: string, basePort: number, windowMs = 1000): Promise<ProcessRow[]> {
  const collector = new Collector(host, basePort);
  await collector.poll();
  await new Promise((r) => setTimeout(r, windowMs));
  return (await collector.poll()).processes;
}

export function formatProcesses(rows: ProcessRow[]): string {
  if (rows.length === 0) return 'no framepipe process answers on this host\'s metrics ports (is the pipeline running, with metrics on?)';
  const ms = (v: number | null) => (v === null ? '–' : v.toFixed(1));
  const table = [['stage', 'host', 'pid', 'ready', 'rate/s', 'p50 ms', 'p99 ms', 'in flight', 'RSS MB', 'errors']];
  for (const r of rows) {
    const errors = Object.entries(r.errors).map(([code, n]) => `${code} ${n}`).join(', ') || '–';
    table.push([r.stage, r.host, String(r.pid), r.ready ? 'yes' : 'no', r.rate.toFixed(1), ms(r.p50), ms(r.p99), String(r.inflight), r.rssMb.toFixed(0), errors]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
