import { Counter, Gauge } from 'prom-client';
import type { Broker } from '../broker/broker.js';
import { meters } from './meters.js';

/** The broker's counters, queue lengths and live peers, read when Prometheus scrapes. */
export function observeBroker(broker: Broker): void {
  const m = meters();
  if (!m) return;
  const registers = [m.registry];
  new Counter({
    name: 'framepipe_broker_events_total',
    help: 'Broker counters: jobs in from ingests, dispatched to replicas, results home, expired',
    labelNames: ['event', 'stage'],
    registers,
    collect() {
      this.reset();
      for (const [event, n] of Object.entries(broker.stats)) this.inc({ event }, n as number);
    },
  });
  new Gauge({
    name: 'framepipe_broker_queued',
    help: 'Jobs waiting at the broker for a replica with credit, per hop',
    labelNames: ['hop', 'stage'],
    registers,
    collect() {
      this.reset();
      for (const [hop, n] of Object.entries(broker.status().queued)) this.set({ hop }, n);
    },
  });
  new Gauge({
    name: 'framepipe_broker_peers',
    help: 'Live peers (ingests and replicas) per rendezvous point',
    labelNames: ['point', 'stage'],
    registers,
    collect() {
      this.reset();
      const count: Record<string, number> = { ingest: 0, detect: 0, classify: 0, sink: 0 };
      for (const p of broker.status().peers) count[p.stage] = (count[p.stage] ?? 0) + 1;
      for (const [point, n] of Object.entries(count)) this.set({ point }, n);
    },
  });
}
