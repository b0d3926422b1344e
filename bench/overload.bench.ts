// Overload: an open-loop client offering 10× what the pipeline can do. Measures how fast the
// excess gets OVERLOADED, the goodput meanwhile, and the peak RSS (VmHWM) of every stage process.
import { readFileSync } from 'node:fs';
import * as zmq from 'zeromq';
import { decodeReply, encodeHeader } from '../src/protocol/request.js';
import { benchPipeline, percentile, table, type Scenario } from './lib.js';

const peakMiB = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const scenario: Scenario = {
  name: 'overload',
  description:
    'Direct mode, noop profile with `detect.model.delay_ms=10` (capacity ≈ 100 requests/s), default `limits.max_inflight` 256. An open-loop DEALER offers 1000 requests/s (10×) with a 30 s deadline each; every reply is timed from its send.',
  async run({ quick }) {
    const capacity = 100;
    const rate = capacity * 10;
    const seconds = quick ? 3 : 10;
    const pipeline = await benchPipeline('noop', ['detect.model.delay_ms=10']);
    try {
      const dealer = new zmq.Dealer({ linger: 0, sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });
      dealer.connect(pipeline.endpoint);
      const sentAt = new Map<number, number>();
      const latency: Record<string, number[]> = {};
      const image = Buffer.from('x');
      const total = rate * seconds;
      const receiving = (async () => {
        let n = 0;
        for await (const [, body] of dealer) {
          const r = decodeReply(body!);
          const code = r.ok ? 'ok' : r.error.code;
          (latency[code] ??= []).push(performance.now() - sentAt.get(r.id as number)!);
          if (++n === total) break;
        }
      })();
      const t0 = performance.now();
      for (let i = 0; i < total; i++) {
        // Open loop: each request leaves at its scheduled time, whatever came back.
        const due = t0 + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        sentAt.set(i, performance.now());
        await dealer.send([Buffer.alloc(0), encodeHeader({ id: i, timeout_ms: 30_000 }), image]);
      }
      const offered = total / ((performance.now() - t0) / 1000);
      await Promise.race([receiving, new Promise((r) => setTimeout(r, 60_000))]);
      const elapsed = (performance.now() - t0) / 1000;
      dealer.close();
      const rows = Object.entries(latency).map(([code, ms]) => {
        const sorted = ms.sort((a, b) => a - b);
        return [code, ms.length, percentile(sorted, 50), percentile(sorted, 99), Math.max(...sorted)];
      });
      const answered = Object.values(latency).reduce((s, l) => s + l.length, 0);
      const peaks = pipeline.procs.map((p) => [p.stage, peakMiB(p.child.pid!)]);
      return [
        `Offered ${offered.toFixed(0)} requests/s for ${seconds} s (${total} requests); ${answered} answered, ${total - answered} unanswered, in ${elapsed.toFixed(1)} s; goodput ${((latency.ok?.length ?? 0) / elapsed).toFixed(1)} ok/s.\n`,
        table(['reply', 'count', 'p50 ms', 'p99 ms', 'max ms'], rows),
        '\nPeak RSS (VmHWM from /proc/PID/status) of each stage process after the run:\n',
        table(['stage', 'peak RSS MiB'], peaks as (string | number)[][]),
      ].join('\n');
    } finally {
      await pipeline.stop();
    }
  },
};

export default scenario;
