// The broker's bookkeeping of jobs out at replicas (src/broker/held-jobs.ts): hand-back of a
// dead replica's jobs, first answer wins, and hedged copies — pure logic, no sockets needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import { HeldJobs } from '../src/broker/held-jobs.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const frames = (job: number, deadline = Date.now() + 10_000) => [packr.pack({ job, origin: 'ing', deadline, parts: [] })];
const key = (job: number) => `ing#${job}`;

test('the owner answers: forwarded once; a later answer from nobody else is forwarded too (broker restarted)', () => {
  const held = new HeldJobs();
  held.dispatched('detect', 'A', frames(1));
  assert.deepEqual(held.settle('detect', 'A', key(1)), { verdict: 'forward' });
  assert.equal(held.size, 0);
  assert.equal(held.settle('detect', 'A', key(1)).verdict, 'forward');
});

test('a hedged job: the first answer wins, whichever copy it is, and the other is dropped', () => {
  for (const first of ['A', 'B']) {
    const held = new HeldJobs();
    held.dispatched('detect', 'A', frames(7));
    assert.deepEqual([...held.outstanding('detect')].map((j) => [j.key, j.owner]), [[key(7), 'A']]);
    held.hedged('detect', key(7), 'B');
    assert.equal([...held.outstanding('detect')].length, 0, 'a hedged job is not hedged again');
    const second = first === 'A' ? 'B' : 'A';
    assert.equal(held.settle('detect', first, key(7)).verdict, 'forward');
    assert.equal(held.settle('detect', second, key(7)).verdict, 'duplicate', `${second}'s late copy`);
    assert.equal(held.size, 0);
  }
});

test('a hedged job whose owner dies stays with the hedge (not queued again); if the hedge dies the owner keeps it', () => {
  const held = new HeldJobs();
  held.dispatched('detect', 'A', frames(1));
  held.dispatched('detect', 'A', frames(2));
  held.hedged('detect', key(1), 'B');
  assert.deepEqual(held.orphaned('detect', 'A').length, 1, 'only the unhedged job goes back');
  assert.equal(held.settle('detect', 'B', key(1)).verdict, 'forward');
  assert.equal(held.size, 1);

  const other = new HeldJobs();
  other.dispatched('detect', 'A', frames(3));
  other.hedged('detect', key(3), 'B');
  assert.equal(other.orphaned('detect', 'B').length, 0);
  assert.equal([...other.outstanding('detect')].length, 1, 'hedgeable again once its hedge is gone');
  assert.equal(other.settle('detect', 'A', key(3)).verdict, 'forward');
  assert.equal(other.settle('detect', 'B', key(3)).verdict, 'forward', 'B is gone: nothing marked duplicate');
});

test('jobs past their deadline are not hedged, and hops are kept apart', () => {
  const held = new HeldJobs();
  held.dispatched('detect', 'A', frames(1, Date.now() - 1));
  held.dispatched('classify', 'A', frames(2));
  assert.equal([...held.outstanding('detect')].length, 0);
  assert.deepEqual([...held.outstanding('classify')].map((j) => j.key), [key(2)]);
});
