import { Counter, Gauge } from 'prom-client';
import type { IngestServer } from '../stage/ingest-server.js';
import { meters } from './meters.js';
import { metricsServer } from './process-metrics.js';

/**
 * Ingest's requests in and out, read from the server's own counters when Prometheus scrapes,
 * so the request path itself does no metrics work. Not ready while the in-flight table is
 * 90 % full (new requests would soon get OVERLOADED).
 */
export function observeIngest(server: IngestServer, maxInflight: number): void {
  const m = meters();
  if (!m) return;
  const registers = [m.registry];
  new Counter({
    name: 'framepipe_requests_total',
    help: 'Client requests at ingest: accepted, answered, rejected at once (by code in framepipe_errors_total), timed_out, late results, skipped (latest-frame mode)',
    labelNames: ['outcome', 'stage'],
    registers,
    collect() {
      this.reset();
      const s = server.stats;
      this.inc({ outcome: 'accepted' }, s.accepted);
      this.inc({ outcome: 'answered' }, s.answered);
      this.inc({ outcome: 'rejected' }, s.rejected);
      this.inc({ outcome: 'timed_out' }, s.timedOut);
      this.inc({ outcome: 'late' }, s.late);
      // Latest-frame mode's SKIPPED: answered as asked, so counted here and never as an error.
      this.inc({ outcome: 'skipped' }, s.skipped);
    },
  });
  new Counter({
    name: 'framepipe_client_files_total',
    help: 'Images that clients on this host handed over as files in /dev/shm (request header shm) and ingest took over',
    labelNames: ['stage'],
    registers,
    collect() {
      this.reset();
      this.inc(server.stats.clientFiles);
    },
  });
  new Gauge({
    name: 'framepipe_requests_in_flight',
    help: 'Requests accepted and not yet answered (limits.max_inflight bounds it)',
    labelNames: ['stage'],
    registers,
    collect() {
      this.set(server.inflight);
    },
  });
  metricsServer()?.addCheck(() => (server.inflight >= maxInflight * 0.9 ? `overloaded: ${server.inflight} of ${maxInflight} requests in flight` : undefined));
}
