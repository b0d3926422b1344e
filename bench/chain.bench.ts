// The floor under the no-model pipeline on this host: five bare zeromq.js processes in
// framepipe's topology — a DEALER client, an ingest-like ROUTER, three PULL → PUSH forwarders
// (detect, classify, sink) and back to the ROUTER — passing a 300-byte message and nothing else;
// and the same with a 100 KB image handed over in /dev/shm the way framepipe's fastest path does
// it (the client writes a file, the ROUTER takes it over and deletes it after the reply).
// What framepipe's own per-job work adds shows against `transport` (client shm rows) and `stage`.
import { chainFloor, type FloorMode } from './chain-floor.js';
import { median, table, type Scenario } from './lib.js';

const WINDOWS = [1, 8, 16];

const VARIANTS: { name: string; mode: FloorMode }[] = [
  { name: '300 B message', mode: 'bare' },
  { name: '100 KB in /dev/shm', mode: 'files' },
];

/** One pass of the chain per window: messages/s and CPU µs per message of each process. */
async function measure(mode: FloorMode, count: number): Promise<Map<number, number[]>> {
  const rows = new Map<number, number[]>();
  for (const w of await chainFloor(mode, WINDOWS, count)) {
    const { client, router, forwarders } = w.cpuUs;
    rows.set(w.window, [w.perSecond, client, router, ...forwarders, client + router + forwarders.reduce((a, b) => a + b, 0)]);
  }
  return rows;
}

const scenario: Scenario = {
  name: 'chain',
  description:
    "Five bare zeromq.js processes in framepipe's topology over TCP loopback — DEALER client → ROUTER (ingest's place) → PUSH/PULL forwarders for detect, classify and sink → PULL back at the ROUTER → reply — doing nothing else; the client keeps 1, 8 or 16 in flight. \"300 B message\": a job header's size passes through. \"100 KB in /dev/shm\": framepipe's fastest path for a 100 KB image with nothing of framepipe in it — the client writes the image to a new file in its private /dev/shm directory and sends the name; the ROUTER does ingest's system calls for it (lstat of directory and file, rename into its own directory, lstat there) and sends on a 300-byte header naming it, and deletes the file when the reply passes. CPU µs per message by process (all threads, /proc/PID/stat); the client's file write is in the client column. Median of interleaved rounds.",
  async run({ quick }) {
    const count = quick ? 3000 : 10_000;
    const rounds = quick ? 1 : 3;
    const runs = new Map<string, Map<number, number[]>[]>();
    for (let round = 0; round < rounds; round++) {
      for (const variant of VARIANTS) {
        const list = runs.get(variant.name) ?? [];
        list.push(await measure(variant.mode, count));
        runs.set(variant.name, list);
      }
    }
    const rows: (string | number)[][] = [];
    for (const variant of VARIANTS) {
      for (const window of WINDOWS) {
        const samples = runs.get(variant.name)!.map((r) => r.get(window)!);
        rows.push([variant.name, window, ...samples[0]!.map((_, i) => median(samples.map((s) => s[i]!)))]);
      }
    }
    return [
      table(['payload', 'in flight', 'messages/s', 'client µs', 'ROUTER µs', 'forwarder 1 µs', 'forwarder 2 µs', 'forwarder 3 µs', 'all five µs'], rows),
      '',
      `Each cell the median of ${rounds} rounds (the variants interleaved) of ${count} messages per window after ${Math.min(2000, count)} warm-up messages.`,
    ].join('\n');
  },
};
export default scenario;
