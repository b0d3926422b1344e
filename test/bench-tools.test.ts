// The benchmark's own machinery: writing into docs/benchmarks.md between markers, the per-hop
// split, the /proc readers and the chart. Speed is never asserted; only that the tools measure
// and write what they say.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { replaceSection, writeChart } from '../bench/doc-writer.js';
import { splitHops } from '../bench/hops.js';
import { cpuSeconds, memoryMiB, rssSampler } from '../bench/proc-stats.js';
import { throughputSvg } from '../bench/svg-chart.js';
import { lateShare, schedule, simulate } from '../bench/dispatch-sim.js';

const DOC = `# Benchmarks

## ocr

<!-- bench:ocr:start -->
old table
<!-- bench:ocr:end -->

Reading it: hand-written prose.

## transport

<!-- bench:transport:start -->
old
<!-- bench:transport:end -->

More prose.
`;

test('replaceSection rewrites only between the markers and keeps the prose around them', () => {
  const out = replaceSection(DOC, 'ocr', '| new | table |');
  assert.match(out, /<!-- bench:ocr:start -->\n\| new \| table \|\n<!-- bench:ocr:end -->/);
  assert.ok(!out.includes('old table'));
  assert.ok(out.includes('Reading it: hand-written prose.'));
  assert.equal(replaceSection(out, 'ocr', 'old table'), DOC, 'writing the old text back restores the file byte for byte');
  assert.ok(out.includes('<!-- bench:transport:start -->\nold\n'), 'other sections untouched');
});

test('replaceSection appends a new section for a scenario without markers', () => {
  const out = replaceSection(DOC, 'batching', 'table');
  assert.ok(out.startsWith(DOC.trimEnd()));
  assert.ok(out.endsWith('## batching\n\n<!-- bench:batching:start -->\ntable\n<!-- bench:batching:end -->\n'));
});

test('replaceSection refuses unpaired markers instead of guessing', () => {
  assert.throws(() => replaceSection('<!-- bench:ocr:start -->\nno end\n', 'ocr', 'x'), /unpaired/);
  assert.throws(() => replaceSection('<!-- bench:ocr:end -->\n<!-- bench:ocr:start -->\n', 'ocr', 'x'), /unpaired|order/);
});

test('splitHops: the parts add up to the round trip, and a reply that does not fit is counted', () => {
  const fits = { rtt: 10, timings: { detect_wait: 1, detect: 3, classify_wait: 0.5, classify: 2, sink_wait: 0.5, total: 8 } };
  const misfit = { rtt: 10, timings: { detect_wait: 1, detect: 6, classify_wait: 0.5, classify: 2, sink_wait: 0.5, total: 8 } };
  const s = splitHops(4, [fits, misfit]);
  assert.equal(s.replies, 2);
  assert.equal(s.misfits, 1);
  assert.ok(Math.abs(s.partsMean - s.rttMean) < 1e-9);
  const part = (name: string) => s.rows.find((r) => r.part.startsWith(name))!.mean;
  assert.equal(part('client'), 2);
  assert.equal(part('detect compute'), 4.5);
  assert.equal(part('rest'), (1 + -2) / 2);
});

test('proc readers: this process has CPU time and resident memory, and a busy loop adds CPU', async () => {
  // Burn 0.3 s of CPU by node's own account (not wall time: a busy host may give this test little CPU).
  const before = cpuSeconds(process.pid);
  const start = process.cpuUsage();
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    const used = process.cpuUsage(start);
    if (used.user + used.system >= 300_000) break;
  }
  const grew = cpuSeconds(process.pid) - before;
  assert.ok(grew >= 0.25 && grew < 5, `/proc says ${grew} s for 0.3 s of work`);
  const m = memoryMiB(process.pid);
  assert.ok(m.rss > 10 && m.hwm >= m.rss);
  assert.ok(Number.isNaN(cpuSeconds(2 ** 30)), 'a process that does not exist reads as NaN');
  const sampler = rssSampler([{ stage: 'me', pid: process.pid }], 20);
  await new Promise((r) => setTimeout(r, 100));
  const r = sampler.stop().me!;
  assert.ok(r.samples >= 3 && r.median > 10 && r.max >= r.median);
});

test('the throughput chart is well-formed SVG with a line per series and a level line per reference', () => {
  const svg = throughputSvg(
    [
      { title: 'a <b>', series: [{ name: 'pipeline', points: [[1, 5], [2, 9], [4, 10]] }, { name: 'loop', points: [[1, 7]] }] },
      { title: 'c', series: [{ name: 'x', points: [[1, 1000], [16, 4000]] }] },
    ],
    'caption',
  );
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
  assert.ok(svg.includes('stroke-dasharray'));
  assert.ok(svg.includes('a &lt;b&gt;'), 'titles are escaped');
  assert.ok(!/NaN|Infinity/.test(svg));
});

test('writeChart keeps other scenarios\u2019 panels when one scenario is redrawn', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fp-chart-'));
  writeChart(dir, { ocr: { title: 'ocr', series: [{ name: 'p', points: [[1, 1], [2, 2]] }] } }, 'run 1');
  writeChart(dir, { objects: { title: 'objects', series: [{ name: 'p', points: [[1, 3], [2, 4]] }] } }, 'run 2');
  const data = JSON.parse(readFileSync(path.join(dir, 'throughput.json'), 'utf8'));
  assert.deepEqual(Object.keys(data).sort(), ['objects', 'ocr']);
  const svg = readFileSync(path.join(dir, 'throughput.svg'), 'utf8');
  assert.ok(svg.indexOf('>ocr<') < svg.indexOf('>objects<'), 'panels in the issue order');
});

test('dispatch-sim: earliest-finish keeps a 4× slower replica out of paced load that one fast replica carries; round-robin does not', () => {
  const paced = schedule('paced', 90, 900);
  assert.equal(paced[1]! - paced[0]!, 1000 / 90);
  const ef = simulate(paced, [10, 40], 'earliest-finish');
  assert.ok(ef.every((l) => Math.abs(l - 10) < 1e-9), 'every job on the fast replica, never queued');
  const rr = simulate(paced, [10, 40], 'round-robin');
  assert.ok(rr.filter((_, k) => k % 2 === 1).every((l) => l >= 40), 'every other job on the slow one');
  assert.ok(rr.at(-1)! > 1000, 'the slow replica gets 45/s of its 25/s: its queue grows without bound');
});

test('dispatch-sim: Poisson arrivals are seeded, have the asked rate, and queue even at an ideal dispatcher', () => {
  const a = schedule('poisson', 50, 5000, 7);
  assert.deepEqual(a, schedule('poisson', 50, 5000, 7));
  assert.notDeepEqual(a, schedule('poisson', 50, 5000, 8));
  const rate = (a.length - 1) / (a.at(-1)! / 1000);
  assert.ok(rate > 47 && rate < 53, `rate ${rate}`);
  const ef = simulate(a, [10, 40], 'earliest-finish');
  const alone = simulate(a, [10], 'earliest-finish');
  assert.ok(ef.every((l, k) => l >= 10 - 1e-9 && l <= alone[k]! + 1e-9), 'never worse than the fast replica alone');
  assert.ok(Math.max(...ef) > 10, 'bursts queue');
});

test('dispatch-sim lateShare: a replica turns away only the jobs it cannot finish in time', () => {
  // Three at once, 10 ms each, 25 ms allowed: two make it, the third would finish at 30.
  assert.equal(lateShare([0, 0, 0], 10, 25), 1 / 3);
  // The turned-away job does not hold the replica: the fourth, at 20 ms, starts at 20.
  assert.equal(lateShare([0, 0, 0, 20], 10, 25), 1 / 4);
  assert.equal(lateShare(schedule('paced', 50, 100), 10, 15), 0);
});
