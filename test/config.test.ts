// Configuration: profiles load, overrides land where they should, bad values name their key,
// and docs/config.md documents every key the profiles produce.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, resolveModelFile } from '../src/config/load.js';
import { resolveThreads } from '../src/config/schema.js';
import { repoRoot } from './helpers.js';

describe('loadConfig', () => {
  test('the default profile is ocr with its models from the npm package', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.profile, 'ocr');
    assert.equal(config.detect.model.kind, 'ocr-det');
    const model = config.detect.model;
    if (model.kind === 'ocr-det') assert.ok(resolveModelFile(model.path, config.models_dir).endsWith('ch_PP-OCRv4_det_infer.onnx'));
  });

  test('threads: auto splits the cores between the model stages by cpu_share; a number overrides it', () => {
    const stages = (d: number | 'auto', ds: number, c: number | 'auto', cs: number, ck = 'ocr-rec') => ({
      detect: { threads: d, cpu_share: ds, model: { kind: 'ocr-det' } },
      classify: { threads: c, cpu_share: cs, model: { kind: ck } },
    });
    const both = (c: ReturnType<typeof stages>, cores: number) => [resolveThreads(c, 'detect', cores), resolveThreads(c, 'classify', cores)];
    assert.deepEqual(both(stages('auto', 1, 'auto', 3), 2), [1, 2], 'ocr on 2 cores');
    assert.deepEqual(both(stages('auto', 1, 'auto', 3), 8), [2, 6], 'ocr on 8 cores');
    assert.deepEqual(both(stages('auto', 1, 'auto', 1), 2), [1, 1], 'objects on 2 cores');
    assert.deepEqual(both(stages('auto', 1, 'auto', 1), 1), [1, 1], 'never below one thread');
    assert.deepEqual(both(stages('auto', 1, 'auto', 1, 'noop'), 4), [4, 1], 'a noop stage takes no share');
    assert.deepEqual(both(stages(3, 1, 'auto', 1), 8), [3, 4], 'a number is kept as it is');
    const ocr = loadConfig({ profile: 'ocr' });
    assert.deepEqual([ocr.detect.threads, ocr.classify.threads], both(stages('auto', 1, 'auto', 3), os.availableParallelism()));
  });

  test('environment beats the file, --set beats the environment, --models beats both', () => {
    const config = loadConfig({
      env: { FRAMEPIPE_DETECT__THREADS: '2', FRAMEPIPE_LIMITS__MAX_INFLIGHT: '10', FRAMEPIPE_MODELS: '/env/models' },
      sets: ['limits.max_inflight=20', 'detect.model.box_threshold=0.5'],
      modelsDir: '/flag/models',
    });
    assert.equal(config.detect.threads, 2);
    assert.equal(config.limits.max_inflight, 20);
    assert.equal(config.models_dir, '/flag/models');
    assert.equal(config.detect.model.kind === 'ocr-det' && config.detect.model.box_threshold, 0.5);
  });

  test('FRAMEPIPE_PROFILE picks the profile; a path works too', () => {
    assert.equal(loadConfig({ env: { FRAMEPIPE_PROFILE: 'objects' } }).classify.model.kind, 'classifier');
    assert.equal(loadConfig({ env: {}, profile: path.join(repoRoot, 'config/noop.yaml') }).detect.model.kind, 'noop');
  });

  const bad: [string, string[], RegExp][] = [
    ['a negative number', ['limits.max_inflight=-1'], /limits\.max_inflight/],
    ['a string for a number', ['detect.threads=many'], /detect\.threads/],
    ['an unknown key', ['limits.max_infligt=3'], /limits: unknown key\(s\) max_infligt/],
    ['an unknown model kind', ['detect.model.kind=resnet'], /detect\.model\.kind/],
    ['a bad endpoint', ['transport.clients=localhost:5555'], /transport\.clients: must be an endpoint/],
  ];
  for (const [name, sets, message] of bad) {
    test(`${name} is refused, naming the key`, () => {
      assert.throws(() => loadConfig({ env: {}, sets }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'CONFIG_INVALID');
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

test('docs/config.md documents every key of every profile', () => {
  const doc = readFileSync(path.join(repoRoot, 'docs/config.md'), 'utf8');
  const missing: string[] = [];
  const walk = (node: unknown, prefix: string, leafOnly: boolean) => {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) {
      const key = prefix.split('.').pop()!;
      if (!doc.includes(`\`${key}\``) && !doc.includes(`\`${prefix}\``)) missing.push(prefix);
      return;
    }
    for (const [k, v] of Object.entries(node)) walk(v, prefix ? `${prefix}.${k}` : k, leafOnly);
  };
  for (const profile of ['ocr', 'objects', 'faces', 'noop']) walk(loadConfig({ env: {}, profile }), '', true);
  assert.deepEqual([...new Set(missing)], []);
});
