// compose.yaml can't be run here (no Docker engine), so it is checked the way compose reads it:
// every service runs a real stage entry point and every variable it sets is a real setting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { repoRoot } from './helpers.js';

interface Service {
  command: string[];
  environment: Record<string, string>;
}

test('compose.yaml: every service is a stage entry point with valid settings', () => {
  const doc = parse(readFileSync(path.join(repoRoot, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
  const names = Object.keys(doc.services).sort();
  assert.deepEqual(names, ['classify', 'detect', 'ingest', 'sink']);
  for (const [name, service] of Object.entries(doc.services)) {
    const entry = service.command[0]!;
    assert.equal(entry, `stages/${name}.ts`);
    assert.ok(existsSync(path.join(repoRoot, entry)), `${entry} exists`);
    // loadConfig throws ConfigError naming the key if any variable is not a real setting.
    const config = loadConfig({ env: service.environment });
    for (const [key, value] of Object.entries(service.environment)) {
      if (!key.startsWith('FRAMEPIPE_TRANSPORT__')) continue;
      const field = key.slice('FRAMEPIPE_TRANSPORT__'.length).toLowerCase() as keyof typeof config.transport;
      assert.equal(config.transport[field], value, `${name}: ${key} reaches transport.${field}`);
    }
  }
});

test('an environment variable that is not a setting is refused, naming it', () => {
  assert.throws(() => loadConfig({ env: { FRAMEPIPE_TRANSPORT__CLIENT: 'tcp://0.0.0.0:5555' } }), /transport: unknown key\(s\) client/);
});
