// The receiving end of bench/hop.bench.ts, in its own process: pulls `count` messages from
// ENDPOINT and reports its CPU time per message over the last `count - warmup` of them.
import * as zmq from 'zeromq';

const [endpoint, countArg, warmupArg] = process.argv.slice(2);
const count = Number(countArg);
const warmup = Number(warmupArg);
const pull = new zmq.Pull({ receiveHighWaterMark: 1000, linger: 0 });
await pull.bind(endpoint!);
process.send!({ ready: true });
let n = 0;
let cpu0 = process.cpuUsage();
let t0 = performance.now();
for await (const _ of pull) {
  if (++n === warmup) {
    cpu0 = process.cpuUsage();
    t0 = performance.now();
  }
  if (n === count) break;
}
const cpu = process.cpuUsage(cpu0);
process.send!({ cpuUs: (cpu.user + cpu.system) / (count - warmup), perSecond: ((count - warmup) * 1000) / (performance.now() - t0) });
pull.close();
