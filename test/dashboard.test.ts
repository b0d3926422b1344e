// The dashboard: its data (processes, rates, streams) and live MJPEG frames from a real OCR
// pipeline (boxes and text drawn on the live frames), then the page itself in headless Chromium (skipped, saying so, without /usr/bin/chromium).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as zmq from 'zeromq';
import { quantileMs, type DashboardSnapshot } from '../src/dashboard/collector.js';
import { Dashboard } from '../src/dashboard/server.js';
import { header, repoRoot, startPipeline, type TestPipeline } from './helpers.js';
import { freeMetricsBase } from './metrics-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const STAGES = ['ingest', 'detect', 'classify', 'sink'];

test('quantiles from cumulative buckets interpolate like histogram_quantile', () => {
  const buckets = new Map([
    [0.001, 50],
    [0.01, 100],
    [Infinity, 100],
  ]);
  assert.equal(quantileMs(buckets, 0.5), 1);
  assert.equal(quantileMs(buckets, 0.75), 5.5);
  assert.equal(quantileMs(new Map([[0.001, 0]]), 0.5), null);
});

describe('dashboard over the OCR pipeline with a client sending stream cam1', () => {
  let pipeline: TestPipeline;
  let dashboard: Dashboard;
  let sending = true;
  let sender: Promise<void>;
  let dealer: zmq.Dealer;

  before(async () => {
    const base = await freeMetricsBase();
    pipeline = await startPipeline('ocr', [`metrics.port=${base}`]);
    dashboard = new Dashboard({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: base, intervalMs: 500 });
    await dashboard.start();
    // Two different pictures, alternating, one request at a time: the live image must change.
    const images = ['gate-sign.jpg', 'night-notice.jpg'].map((f) => readFileSync(path.join(repoRoot, 'samples', f)));
    dealer = new zmq.Dealer({ linger: 0, receiveTimeout: 10_000 });
    dealer.connect(pipeline.endpoint);
    sender = (async () => {
      for (let frame = 0; sending; frame++) {
        await dealer.send([Buffer.alloc(0), header({ id: frame, stream: 'cam1', frame }), images[frame % 2]!]);
        await dealer.receive();
        await new Promise((r) => setTimeout(r, 50));
      }
    })().catch(() => {});
  });

  after(async () => {
    sending = false;
    await sender;
    dealer?.close();
    await dashboard?.stop();
    await pipeline?.stop();
  });

  test('the snapshot lists all four stages with rates, and the stream', async () => {
    let snap: DashboardSnapshot | null = null;
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      snap = (await (await fetch(`${dashboard.url}api/stats`)).json()) as DashboardSnapshot | null;
      if (snap && STAGES.every((s) => snap!.processes.some((p) => p.stage === s && p.rate > 0)) && snap.streams.includes('cam1')) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(snap);
    assert.deepEqual(snap.processes.map((p) => p.stage), STAGES);
    for (const p of snap.processes) {
      assert.ok(p.rate > 0, `${p.stage} rate`);
      assert.equal(p.pid, pipeline.procs.find((x) => x.stage === p.stage)!.child.pid);
    }
    assert.ok(snap.processes.find((p) => p.stage === 'detect')!.p50! > 0, 'detect p50');
    assert.deepEqual(snap.streams, ['cam1']);
  });

  test('/streams/cam1.mjpg sends annotated JPEG frames, and different ones over time, beside a viewer that never reads', async () => {
    // A stuck viewer: asks for the stream, then never reads. It must cost the others nothing.
    const stuck = net.connect(Number(new URL(dashboard.url).port), '127.0.0.1');
    stuck.write('GET /streams/cam1.mjpg HTTP/1.1\r\nHost: x\r\n\r\n');
    stuck.pause();
    const abort = new AbortController();
    const res = await fetch(`${dashboard.url}streams/cam1.mjpg`, { signal: abort.signal });
    assert.match(res.headers.get('content-type') ?? '', /^multipart\/x-mixed-replace; boundary=/);
    const reader = res.body!.getReader();
    let buf = Buffer.alloc(0);
    const frames: Buffer[] = [];
    const until = Date.now() + 10_000;
    while (frames.length < 3 && Date.now() < until) {
      const { value, done } = await reader.read();
      if (done) break;
      buf = Buffer.concat([buf, Buffer.from(value)]);
      for (;;) {
        const m = /Content-Length: (\d+)\r\n\r\n/.exec(buf.toString('latin1'));
        if (!m) break;
        const start = m.index + m[0].length;
        const len = Number(m[1]);
        if (buf.length < start + len) break;
        frames.push(buf.subarray(start, start + len));
        buf = buf.subarray(start + len);
      }
    }
    abort.abort();
    stuck.destroy();
    assert.ok(frames.length >= 2, `got ${frames.length} frames`);
    for (const f of frames) assert.deepEqual([...f.subarray(0, 2)], [0xff, 0xd8], 'a JPEG');
    assert.ok(frames.some((f) => !f.equals(frames[0]!)), 'the frames change');
  });

  test('the page in headless Chromium: all four stages, a live changing stream; a screenshot', async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`SKIPPED: ${CHROMIUM} is absent (apt-get install chromium; .ci/run installs it)`);
      return;
    }
    const { chromium } = await import('playwright-core');
    const profile = mkdtempSync(path.join(os.tmpdir(), 'framepipe-chromium-'));
    // A fresh profile directory (playwright passes it as --user-data-dir).
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1100, height: 900 },
    });
    try {
      const page = await browser.newPage();
      await page.goto(dashboard.url);
      await page.waitForFunction((stages) => stages.every((s) => document.querySelector(`#procs tr[data-stage="${s}"]`)), STAGES, { timeout: 30_000 });
      const rows = await page.$$eval('#procs tbody tr', (trs) => trs.map((tr) => (tr as HTMLElement).dataset.stage));
      assert.deepEqual(rows, STAGES);
      const img = page.locator('img[data-stream="cam1"]');
      await img.waitFor({ timeout: 20_000 });
      await page.waitForFunction(() => (document.querySelector('img[data-stream="cam1"]') as HTMLImageElement | null)?.naturalWidth! > 0, undefined, { timeout: 20_000 });
      const first = await img.screenshot();
      // Under load (two cores, OCR models) a new frame can take seconds: poll up to 20 s.
      let changed = false;
      for (const until = Date.now() + 20_000; !changed && Date.now() < until; ) {
        await page.waitForTimeout(250);
        changed = !(await img.screenshot()).equals(first);
      }
      assert.ok(changed, 'the live image changes');
      await page.waitForTimeout(1500); // a few chart points
      // Into a temporary folder: a test run must not change the tree. FRAMEPIPE_SCREENSHOT=docs/dashboard.png refreshes the README's picture.
      const shot = process.env.FRAMEPIPE_SCREENSHOT ? path.resolve(repoRoot, process.env.FRAMEPIPE_SCREENSHOT) : path.join(mkdtempSync(path.join(os.tmpdir(), 'fp-dash-')), 'dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot}`);
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
