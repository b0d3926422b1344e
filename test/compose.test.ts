// compose.yaml and deploy/k8s can't be run here (no Docker engine, no cluster), so they are
// checked the way those tools read them: every service runs a real stage entry point, every
// variable it sets is a real setting, and every stage reaches the broker's rendezvous point.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { metricsPort, type MeteredProcess } from '../src/metrics/ports.js';
import type { Config } from '../src/config/schema.js';
import { repoRoot } from './helpers.js';

const PROCESSES = ['broker', 'classify', 'detect', 'ingest', 'sink'];

/** A variable's value as loadConfig stored it, found by its key path. */
function settingOf(config: Config, variable: string): unknown {
  const keys = variable.slice('FRAMEPIPE_'.length).toLowerCase().split('__');
  return keys.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], config);
}

function checkEnvironment(where: string, env: Record<string, string>): Config {
  // loadConfig throws ConfigError naming the key if any variable is not a real setting.
  const config = loadConfig({ env });
  for (const [key, value] of Object.entries(env)) {
    if (!key.includes('__')) continue;
    assert.equal(String(settingOf(config, key)), value, `${where}: ${key} reaches its setting`);
  }
  return config;
}

/** The port of a tcp endpoint. */
const port = (endpoint: string) => endpoint.split(':').pop();

describe('compose.yaml', () => {
  interface Service {
    command: string[];
    environment: Record<string, string>;
    ports?: string[];
    healthcheck?: { test: string[] };
  }
  const doc = parse(readFileSync(path.join(repoRoot, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };

  test('one service per stage plus the broker, each a real entry point with valid settings', () => {
    assert.deepEqual(Object.keys(doc.services).sort(), PROCESSES);
    const broker = checkEnvironment('broker', doc.services.broker!.environment);
    for (const [name, service] of Object.entries(doc.services)) {
      const entry = service.command[0]!;
      assert.deepEqual(service.command, [`stages/${name}.ts`]);
      assert.ok(existsSync(path.join(repoRoot, entry)), `${entry} exists`);
      const config = checkEnvironment(name, service.environment);
      assert.equal(config.transport.mode, 'broker', `${name} runs in broker mode`);
      // The health check runs a real script against the process's /readyz, reachable in the container.
      const check = service.healthcheck?.test ?? [];
      assert.deepEqual(check.slice(0, 2), ['CMD', 'node'], `${name} has a health check`);
      assert.ok(existsSync(path.join(repoRoot, check[2]!)), `${check[2]} exists`);
      assert.equal(config.metrics.host, '0.0.0.0', `${name}: metrics reachable`);
      if (name === 'broker') continue;
      // Every stage connects to the broker service on the port the broker binds.
      for (const point of ['ingest', 'detect', 'classify', 'sink'] as const) {
        assert.equal(config.broker[point], `tcp://broker:${port(broker.broker[point])}`, `${name}: broker.${point}`);
      }
    }
  });

  test('replicated stages bind nothing and publish no port, so --scale works', () => {
    for (const name of ['detect', 'classify', 'sink']) assert.equal(doc.services[name]!.ports, undefined, name);
  });
});

describe('deploy/k8s', () => {
  const dir = path.join(repoRoot, 'deploy/k8s');
  type Obj = { kind: string; metadata: { name: string }; spec?: any; data?: Record<string, string> };
  const objects: Obj[] = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => d.toJS() as Obj))
    .filter(Boolean);
  const byKind = (kind: string) => objects.filter((o) => o.kind === kind);

  test('one Deployment per stage plus the broker, each a real entry point with valid settings', () => {
    const configMap = byKind('ConfigMap')[0]!;
    assert.ok(configMap, 'a ConfigMap holds the configuration');
    const deployments = byKind('Deployment');
    assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), PROCESSES.map((p) => `framepipe-${p}`));
    for (const d of deployments) {
      const name = d.metadata.name.replace('framepipe-', '');
      const container = d.spec.template.spec.containers[0];
      assert.deepEqual(container.args, [`stages/${name}.ts`]);
      assert.ok(existsSync(path.join(repoRoot, container.args[0]!)));
      const env: Record<string, string> = { ...configMap.data };
      for (const e of container.env ?? []) env[e.name] = e.value;
      assert.ok((container.envFrom ?? []).some((f: any) => f.configMapRef?.name === configMap.metadata.name), `${name} reads the ConfigMap`);
      const config = checkEnvironment(name, env);
      assert.equal(config.transport.mode, 'broker');
      // Probes hit this process's own metrics port (base + its stage's offset), reachable in the pod.
      const port = metricsPort(config.metrics.port, name as MeteredProcess);
      assert.equal(config.metrics.host, '0.0.0.0', `${name}: metrics reachable by the kubelet`);
      assert.deepEqual(container.readinessProbe?.httpGet, { path: '/readyz', port }, `${name} readiness probe`);
      assert.deepEqual(container.livenessProbe?.httpGet, { path: '/healthz', port }, `${name} liveness probe`);
    }
  });

  test('a Service per rendezvous point, each pointing at the broker on the port it binds', () => {
    const configMap = byKind('ConfigMap')[0]!;
    const config = loadConfig({ env: configMap.data });
    const services = byKind('Service');
    for (const point of ['ingest', 'detect', 'classify', 'sink'] as const) {
      const [, host, p] = /^tcp:\/\/([^:]+):(\d+)$/.exec(config.broker[point])!;
      const svc = services.find((s) => s.metadata.name === host);
      assert.ok(svc, `a Service named ${host} for broker.${point}`);
      assert.equal(svc.spec.selector.app, 'framepipe-broker');
      assert.ok(svc.spec.ports.some((x: any) => String(x.port) === p), `${host} serves port ${p}`);
    }
    assert.ok(services.some((s) => s.spec.selector.app === 'framepipe-ingest'), 'clients reach ingest through a Service');
  });
});

test('an environment variable that is not a setting is refused, naming it', () => {
  assert.throws(() => loadConfig({ env: { FRAMEPIPE_TRANSPORT__CLIENT: 'tcp://0.0.0.0:5555' } }), /transport: unknown key\(s\) client/);
});
