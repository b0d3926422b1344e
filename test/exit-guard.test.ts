// A forced exit waits while a registered check says a native call is in progress
// (src/exit-guard.ts): run in a child process, since the point is process.exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { repoRoot } from './helpers.js';

test('exitWhenIdle exits with the code, but only once no guard is busy', () => {
  const script = `
    import { holdExitWhile, exitWhenIdle } from './src/exit-guard.ts';
    const start = Date.now();
    holdExitWhile(() => Date.now() - start < 300);
    process.on('exit', () => console.log('waited', Date.now() - start));
    exitWhenIdle(7);
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 7, r.stderr);
  const waited = Number(/waited (\d+)/.exec(r.stdout)?.[1]);
  assert.ok(waited >= 300, `exited after ${waited} ms, before the guard let go`);
});
