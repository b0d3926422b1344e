// The flame-graph renderer behind `npm run flamegraph` (scripts/flamegraph-svg.ts), on a real
// .cpuprofile written by `node --cpu-prof` for a small program that spins in a named function.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { foldProfile, foldedText, frameLocation, renderFlameGraph, selfArea, type CpuProfile } from '../scripts/flamegraph-svg.js';

describe('flame graphs from --cpu-prof', () => {
  let dir: string;
  let profile: CpuProfile;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fp-flame-'));
    const script = path.join(dir, 'busy.mjs');
    // ~300 ms in spinBusily (JSON work, so it cannot be optimised away), then 200 ms asleep in the event loop.
    writeFileSync(
      script,
      `function spinBusily(until) { let n = 0; while (Date.now() < until) n += JSON.stringify({ n }).length; return n; }
spinBusily(Date.now() + 300);
setTimeout(() => {}, 200);
`,
    );
    execFileSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, script], { timeout: 30_000 });
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    assert.ok(file, 'node wrote no .cpuprofile');
    profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('folds every sample once, idle apart, and finds the busy function', () => {
    const folded = foldProfile(profile);
    const inStacks = [...folded.stacks.values()].reduce((a, b) => a + b, 0);
    assert.equal(inStacks + folded.idle, folded.total);
    assert.equal(folded.total, profile.samples.length);
    assert.ok(folded.idle > 0, 'the 200 ms timer should show as idle samples');
    const [top] = [...folded.self].sort((a, b) => b[1] - a[1]);
    assert.match(top![0], /^(spinBusily|stringify)\b/, `top self frame was ${top![0]}`);
    const spin = [...folded.stacks].filter(([s]) => s.includes('spinBusily busy.mjs') || s.includes(`spinBusily ${dir}`)).reduce((a, [, n]) => a + n, 0);
    assert.ok(spin > (folded.total - folded.idle) / 2, `spinBusily in ${spin} of ${folded.total - folded.idle} busy samples`);
    for (const line of foldedText(folded).trim().split('\n')) assert.match(line, /^\S.* \d+$/);
  });

  it('keeps only the samples inside the window', () => {
    const all = foldProfile(profile);
    const none = foldProfile(profile, profile.endTime + 1, profile.endTime + 2);
    assert.equal(none.total, 0);
    const firstHalf = foldProfile(profile, profile.startTime, (profile.startTime + profile.endTime) / 2);
    assert.ok(firstHalf.total > 0 && firstHalf.total < all.total);
  });

  it('renders an SVG whose boxes nest: every child inside its parent', () => {
    const svg = renderFlameGraph(foldProfile(profile).stacks, { title: 'busy <test>', subtitle: 'a & b' });
    assert.ok(svg.startsWith('<?xml') && svg.trimEnd().endsWith('</svg>'));
    assert.ok(svg.includes('busy &lt;test&gt;') && svg.includes('a &amp; b'), 'title and subtitle escaped');
    assert.match(svg, /<title>spinBusily [^<]* \(\d+ samples, [\d.]+%\)<\/title>/);
    // The root box spans the full width minus padding; no box is wider or starts outside it.
    const boxes = [...svg.matchAll(/<g><title>[^<]*<\/title><rect x="([\d.]+)" y="\d+" width="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
    assert.ok(boxes.length > 3, `${boxes.length} boxes`);
    const [rootX, rootW] = boxes[0]!;
    assert.equal(rootW, 1180);
    for (const [x, w] of boxes) assert.ok(x >= rootX - 0.05 && x + w <= rootX + rootW + 0.15, `box at ${x} width ${w}`);
  });

  it('charges native and wasm leaves to the package whose JavaScript called them', () => {
    assert.equal(frameLocation('pump src/transport/writer.ts'), 'src/transport/writer.ts');
    assert.equal(frameLocation('(garbage collector)'), '');
    assert.equal(selfArea('runPipe src/stage/run-pipe.ts;next zeromq/lib/index.js:43'), 'zeromq');
    assert.equal(selfArea('a src/x.ts;proto.<computed> @techstark/opencv-js/dist/opencv.js:30;warpPerspective;wasm-function[1] wasm://wasm/01:1'), '@techstark/opencv-js (wasm)');
    assert.equal(selfArea('run src/models/x.ts;(anonymous) sharp/dist/output.mjs:1727;nativeCall'), 'sharp (native)');
    assert.equal(selfArea('(garbage collector)'), 'GC');
    assert.equal(selfArea('tick node:internal/process/task_queues:95'), 'node:internal/process/task_queues');
  });
});
