// The plumbing alone: the noop profile through all four stages against a bare ZeroMQ REQ/REP
// echo of the same bytes, in lockstep (concurrency 1) and pipelined.
import * as zmq from 'zeromq';
import { freePorts } from '../src/transport/ports.js';
import { benchPipeline, offerLoad, summarize, table, type Scenario } from './lib.js';

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

const scenario: Scenario = {
  name: 'transport',
  description: 'noop profile (no models) through ingest → detect → classify → sink vs a bare REQ/REP echo of the same bytes.',
  async run({ quick }) {
    const sizes = [10_000, 100_000, 1_000_000];
    const pipeline = await benchPipeline('noop', ['detect.concurrency=8', 'classify.concurrency=8']);
    const rows: (string | number)[][] = [];
    try {
      for (const size of sizes) {
        const payload = Buffer.alloc(size, 0xab);
        const n = quick ? 300 : size >= 1_000_000 ? 1000 : 3000;
        await offerLoad(pipeline.endpoint, [payload], 8, 200);
        const echo = await echoLockstep(payload, n);
        const lock = await offerLoad(pipeline.endpoint, [payload], 1, n);
        const piped = await offerLoad(pipeline.endpoint, [payload], 16, n);
        rows.push([`${size / 1000} KB`, echo.perSecond, echo.p50, lock.perSecond, lock.p50, piped.perSecond, piped.p50, piped.p99]);
      }
    } finally {
      await pipeline.stop();
    }
    return table(
      ['payload', 'REQ/REP echo img/s', 'echo p50 ms', 'pipeline c=1 img/s', 'pipeline c=1 p50 ms', 'pipeline c=16 img/s', 'c=16 p50 ms', 'c=16 p99 ms'],
      rows,
    );
  },
};
export default scenario;
