// deploy/grafana/framepipe.json: valid JSON, and every metric its queries use is one that
// framepipe's processes export (so a renamed metric cannot leave a dead panel behind).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { repoRoot } from './helpers.js';

test('every metric the Grafana dashboard queries is exported', async () => {
  const dashboard = JSON.parse(readFileSync(path.join(repoRoot, 'deploy/grafana/framepipe.json'), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  assert.ok(dashboard.panels.length >= 10);
  const exported = new Set<string>();
  const dir = path.join(repoRoot, 'src/metrics');
  for (const file of readdirSync(dir)) {
    for (const m of readFileSync(path.join(dir, file), 'utf8').matchAll(/name: '(framepipe_\w+)'/g)) exported.add(m[1]!);
  }
  const defaults = new Registry();
  collectDefaultMetrics({ register: defaults });
  for (const m of await defaults.getMetricsAsJSON()) exported.add(m.name);
  const unknown: string[] = [];
  for (const panel of dashboard.panels) {
    assert.ok(panel.targets.length > 0, panel.title);
    for (const { expr } of panel.targets) {
      for (const [name] of expr.matchAll(/\b(framepipe|process|nodejs)_\w+/g)) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        if (!exported.has(name) && !exported.has(base)) unknown.push(`${panel.title}: ${name}`);
      }
    }
  }
  assert.deepEqual(unknown, []);
});
