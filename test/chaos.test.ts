// Chaos, small size (npm run chaos is the full one): broker mode, detect ×2 and classify ×2,
// replicas SIGKILLed at random moments and the broker once, all restarted by the supervisor,
// while requests flow at full load. Every request answered exactly once, none lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { formatCounted } from '../bench/counted-load.js';
import { noiseJpeg } from '../bench/lib.js';
import { runChaos } from '../scripts/chaos.js';

test('chaos: 200 requests, replicas and the broker killed — every request answered exactly once', async (t) => {
  const r = await runChaos({ requests: 200, killEveryMs: [300, 900] });
  t.diagnostic(formatCounted(r));
  t.diagnostic(`kills ${JSON.stringify(r.kills)}, restarts ${r.restarts}`);
  assert.equal(r.lost, 0);
  assert.equal(r.duplicates, 0);
  assert.equal(r.kills.broker, 1);
  assert.ok((r.kills.detect ?? 0) + (r.kills.classify ?? 0) >= 1, 'at least one replica killed');
  // Jobs queued inside the broker when it dies are answered TIMEOUT: at most the window (16).
  assert.ok(r.ok >= r.sent - 16, `${r.ok} ok of ${r.sent}`);
});

test('chaos with shared memory forced on (100 KB JPEGs decoded in detect): none lost, no duplicate, no directory left in /dev/shm', { skip: existsSync('/dev/shm') ? false : 'no /dev/shm' }, async (t) => {
  const before = new Set(readdirSync('/dev/shm').filter((d) => d.startsWith('framepipe-')));
  const r = await runChaos({ requests: 200, killEveryMs: [300, 900], sets: ['transport.shared_memory=on', 'detect.model.decode=true'], image: await noiseJpeg(390) });
  t.diagnostic(formatCounted(r));
  t.diagnostic(`kills ${JSON.stringify(r.kills)}, restarts ${r.restarts}`);
  assert.equal(r.lost, 0);
  assert.equal(r.duplicates, 0);
  assert.ok(r.ok >= r.sent - 16, `${r.ok} ok of ${r.sent}`);
  assert.ok(!Object.keys(r.errors).includes('INTERNAL'), `no job failed reading its image: ${JSON.stringify(r.errors)}`);
  const left = readdirSync('/dev/shm').filter((d) => d.startsWith('framepipe-') && !before.has(d));
  assert.deepEqual(left, [], 'ingest removed its directory');
});
