// The plumbing alone: the noop profile (no models, no decode) through all four stages at client
// concurrency 1–16 against a bare ZeroMQ REQ/REP echo of the same bytes, for JPEGs of about
// 10 KB, 100 KB and 1 MB.
import * as zmq from 'zeromq';
import { freePorts } from '../src/transport/ports.js';
import { benchPipeline, noiseJpeg, summarize, table, type ChartSeries, type Scenario } from './lib.js';
import { BestOf, CPU_NOTE, hopSection, pipelineSeries, roundsNote, sweepPipeline, sweepTable, withCpu, type PipelineSweep, type SweepRow } from './sweep.js';
import { memoryMiB } from './proc-stats.js';
import { chainFloor } from './chain-floor.js';

async function echoLockstep(payload: Buffer, count: number) {
  const [port] = await freePorts(1);
  const rep = new zmq.Reply({ linger: 0 });
  await rep.bind(`tcp://127.0.0.1:${port}`);
  const serve = (async () => {
    for await (const msg of rep) await rep.send(msg);
  })().catch(() => {});
  const req = new zmq.Request({ linger: 0 });
  req.connect(`tcp://127.0.0.1:${port}`);
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const s = performance.now();
    await req.send(payload);
    await req.receive();
    lat.push(performance.now() - s);
  }
  const r = summarize(1, lat, 0, (performance.now() - t0) / 1000);
  req.close();
  rep.close();
  await serve;
  return r;
}

/**
 * A real JPEG of about `bytes`: noise compresses poorly, so its size follows its pixel count;
 * a few rounds of rescaling get within a few percent.
 */
async function jpegOfSize(bytes: number): Promise<Buffer> {
  let side = Math.sqrt(bytes / 1.2);
  let jpeg: Buffer = Buffer.alloc(0);
  for (let i = 0; i < 4; i++) {
    jpeg = await noiseJpeg(Math.max(8, Math.round(side)));
    side *= Math.sqrt(bytes / jpeg.length);
  }
  return jpeg;
}

/**
 * The floor of the client-shm path in this round: five bare zeromq.js processes doing only the
 * same file handover (bench/chain-floor.ts), one at a time and 16 in flight, as rows of the table
 * (ROUTER in ingest's column, the forwarders in detect's, classify's and sink's).
 */
async function floorRows(payload: Buffer, size: string, n: number): Promise<SweepRow[]> {
  const windows = await chainFloor('files', [1, 16], n, payload.length);
  return windows.map((w) => {
    const [detect, classify, sink] = w.cpuUs.forwarders;
    const us = { ingest: w.cpuUs.router, detect: detect!, classify: classify!, sink: sink!, client: w.cpuUs.client };
    return {
      ...summarize(w.window, w.latencies, 0, w.latencies.length / w.perSecond),
      system: `bare floor, client shm, ${size}`,
      cpuPerImage: Object.fromEntries(Object.entries(us).map(([k, v]) => [k, v / 1e6])),
    };
  });
}

const kb = (n: number) => (n >= 1_000_000 ? `${(n / 1_000_000).toFixed(2)} MB` : `${(n / 1000).toFixed(0)} KB`);

const scenario: Scenario = {
  name: 'transport',
  description:
    'noop profile (no models, no decode; detect and classify concurrency 8) through ingest → detect → classify → sink at client concurrency 1–16, against a bare ZeroMQ REQ/REP echo (lock-step, one process) of the same bytes: random-pixel JPEGs of about 10 KB, 100 KB and 1 MB. "pipeline" rows run with the default `transport.shared_memory: auto` (on these loopback hops, images of 64 KiB and more go through /dev/shm and only their names travel; 10 KB rides in the messages either way); "client shm" rows are the same pipeline with the client on this host handing each image over as a file in /dev/shm (request header `shm`: the client writes the file, ingest moves it into its directory, and no image byte crosses a socket; the file write is counted in the client CPU column and in the latency); "shm off" rows are the same pipeline with `transport.shared_memory=off`, every hop carrying the bytes, run in the same rounds; "bare floor, client shm" rows (64 KiB and up, concurrency 1 and 16) are five bare zeromq.js processes in the same topology doing only the client-shm path\'s file handover and nothing else of framepipe, also in the same rounds: the floor under the client shm rows.',
  async run({ quick }) {
    const targets = [10_000, 100_000, 1_000_000];
    const payloads = await Promise.all(targets.map(jpegOfSize));
    const rounds = quick ? 1 : 2;
    const keep = new BestOf();
    const sweeps = new Map<string, PipelineSweep>(); // by payload size, last round
    const pipeline = await benchPipeline('noop', ['detect.concurrency=8', 'classify.concurrency=8']);
    const bytesPipeline = await benchPipeline('noop', ['detect.concurrency=8', 'classify.concurrency=8', 'transport.shared_memory=off']);
    try {
      for (let round = 0; round < rounds; round++) {
        for (const payload of payloads) {
          const size = kb(payload.length);
          const n = quick ? 300 : payload.length >= 500_000 ? 600 : 2000;
          const sweep = await sweepPipeline(pipeline, [payload], { system: `pipeline, ${size}`, count: () => n });
          keep.add(sweep.rows);
          sweeps.set(size, sweep);
          if (payload.length >= 65_536) {
            keep.add((await sweepPipeline(pipeline, [payload], { system: `pipeline, client shm, ${size}`, count: () => n, sharedMemory: true })).rows);
            keep.add((await sweepPipeline(bytesPipeline, [payload], { system: `pipeline, shm off, ${size}`, count: () => n })).rows);
            keep.add(await floorRows(payload, size, n));
          }
          // Both ends in the bench process: its CPU is the echo's whole cost.
          keep.add([await withCpu(`REQ/REP echo, ${size}`, () => echoLockstep(payload, n))]);
        }
      }
      const hwm = pipeline.procs.map((p) => [p.stage, memoryMiB(p.child.pid!).hwm]);
      const sizes = [...sweeps.keys()];
      const stages = Object.keys(sweeps.get(sizes[0]!)!.rss);
      const rssRows = stages.map((s) => [s, ...sizes.map((size) => sweeps.get(size)!.rss[s]!.median), hwm.find(([st]) => st === s)?.[1] ?? '–']);
      const hundred: [string, PipelineSweep] = [sizes[1]!, sweeps.get(sizes[1]!)!];
      const series: ChartSeries[] = sizes.map((size) => ({ ...pipelineSeries(`pipeline ${size}`, keep.where((s) => s === `pipeline, ${size}`)), group: size }));
      const echoSeries: ChartSeries[] = sizes.map((size) => ({ name: `REQ/REP echo ${size}`, points: [[1, keep.where((s) => s === `REQ/REP echo, ${size}`)[0]!.perSecond]], group: size }));
      const markdown = [
        sweepTable(keep.all()),
        '',
        `${roundsNote(rounds)} ${CPU_NOTE} The REQ/REP echo is lock-step (one in flight), both ends in the bench process: its CPU is the "total CPU" column. "bare floor, client shm" rows: five bare zeromq.js processes in the pipeline's topology doing only the client-shm path's file handover (the client's file write with framepipe's ClientFiles; lstat, rename, lstat and unlink at an ingest-like ROUTER) and passing a 300-byte header, nothing else of framepipe (bench/chain-floor.ts, as the chain scenario) — the ROUTER in the ingest column, the three forwarders in detect, classify and sink.`,
        '',
        `Where a request's time goes at ${hundred[0]} (last round; ms; parts from the replies' \`timings_ms\`, client part = round trip − \`total\`):`,
        '',
        hopSection(hundred[1], 16),
        '',
        'Steady RSS per stage (median of VmRSS sampled every 200 ms during the c=16 step of each payload), and VmHWM after the whole run:',
        '',
        table(['stage', ...sizes.map((s) => `${s} RSS MiB`), 'VmHWM MiB'], rssRows as (string | number)[][]),
      ].join('\n');
      return { markdown, chart: { title: 'transport (noop profile)', series: [...series, ...echoSeries] } };
    } finally {
      await pipeline.stop();
      await bytesPipeline.stop();
    }
  },
};
export default scenario;
