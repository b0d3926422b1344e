// Metrics and health: every stage serves Prometheus metrics, /healthz and /readyz on its port
// (metrics.port + its offset); counters follow real requests, errors are counted by code.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { metricsPort, type MeteredProcess } from '../src/metrics/ports.js';
import { header, repoRoot, reqOnce, startPipeline, type TestPipeline } from './helpers.js';
import { freeMetricsBase, getText, sample } from './metrics-helpers.js';

const STAGES: MeteredProcess[] = ['ingest', 'detect', 'classify', 'sink'];

describe('metrics (noop profile, decode on)', () => {
  let pipeline: TestPipeline;
  let base: number;
  const url = (stage: MeteredProcess, p: string) => `http://127.0.0.1:${metricsPort(base, stage)}${p}`;

  before(async () => {
    base = await freeMetricsBase();
    pipeline = await startPipeline('noop', [`metrics.port=${base}`, 'detect.model.decode=true', 'log.level=debug']);
  });
  after(() => pipeline?.stop());

  test('each stage announces its metrics port and is alive and ready', async () => {
    for (const stage of STAGES) {
      const proc = pipeline.procs.find((p) => p.stage === stage)!;
      assert.equal(proc.facts.metrics, url(stage, '/metrics'));
      assert.equal((await getText(url(stage, '/healthz'))).status, 200);
      const ready = await getText(url(stage, '/readyz'));
      assert.equal(ready.status, 200, ready.body);
    }
  });

  test('requests, errors by code, processing and step times are counted', async () => {
    const image = readFileSync(path.join(repoRoot, 'samples/gate-sign.jpg'));
    for (let i = 0; i < 3; i++) assert.equal((await reqOnce(pipeline.endpoint, [header({ id: i, stream: 'cam1' }), image])).ok, true);
    const bad = await reqOnce(pipeline.endpoint, [header({ id: 'bad' }), Buffer.from('not an image')]);
    assert.equal(bad.ok, false);

    const detect = (await getText(url('detect', '/metrics'))).body;
    assert.equal(sample(detect, 'framepipe_jobs_total{outcome="ok",stage="detect"}'), 3);
    assert.equal(sample(detect, 'framepipe_errors_total{code="BAD_IMAGE",stage="detect"}'), 1);
    assert.equal(sample(detect, 'framepipe_processing_seconds_count{stage="detect"}'), 4);
    assert.equal(sample(detect, 'framepipe_queue_wait_seconds_count{stage="detect"}'), 4);
    assert.ok(detect.includes('process_resident_memory_bytes'), 'default process metrics');

    const classify = (await getText(url('classify', '/metrics'))).body;
    assert.equal(sample(classify, 'framepipe_jobs_total{outcome="passed",stage="classify"}'), 1);

    const sink = (await getText(url('sink', '/metrics'))).body;
    assert.equal(sample(sink, 'framepipe_replies_total{code="OK",stage="sink"}'), 3);
    assert.equal(sample(sink, 'framepipe_replies_total{code="BAD_IMAGE",stage="sink"}'), 1);
    assert.equal(sample(sink, 'framepipe_stream_frames_total{stream="cam1",stage="sink"}'), 3);
    assert.equal(sample(sink, 'framepipe_request_seconds_count{stage="sink"}'), 4);

    const ingest = (await getText(url('ingest', '/metrics'))).body;
    assert.equal(sample(ingest, 'framepipe_requests_total{outcome="accepted",stage="ingest"}'), 4);
    assert.equal(sample(ingest, 'framepipe_requests_total{outcome="answered",stage="ingest"}'), 4);
    assert.equal(sample(ingest, 'framepipe_requests_in_flight{stage="ingest"}'), 0);
  });

  test('a malformed request is counted by code at ingest', async () => {
    const reply = await reqOnce(pipeline.endpoint, [Buffer.from('not msgpack')]);
    assert.equal(reply.ok, false);
    const ingest = (await getText(url('ingest', '/metrics'))).body;
    assert.equal(sample(ingest, 'framepipe_errors_total{code="BAD_REQUEST",stage="ingest"}'), 1);
  });

  test('per-request log lines carry the request id and job number', () => {
    const detect = pipeline.procs.find((p) => p.stage === 'detect')!;
    const lines = detect.output.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const failed = lines.find((l) => l.msg === 'job failed');
    assert.ok(failed, 'a job failed line');
    assert.equal(failed.id, 'bad');
    assert.equal(typeof failed.job, 'number');
    assert.equal(failed.stage, 'detect');
    assert.equal(failed.code, 'BAD_IMAGE');
  });

  test('/stats.json names the process', async () => {
    const stats = JSON.parse((await getText(url('sink', '/stats.json'))).body) as { stage: string; pid: number; ready: boolean };
    assert.equal(stats.stage, 'sink');
    assert.equal(stats.pid, pipeline.procs.find((p) => p.stage === 'sink')!.child.pid);
    assert.equal(stats.ready, true);
  });
});
