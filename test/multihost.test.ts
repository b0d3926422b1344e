// Several hosts for real: Linux network namespaces joined by a bridge (in a namespace of its
// own, so the host's network is never touched). Broker and ingest on one "host", two detect
// replicas on a second, classify and sink on a third, the client on a fourth; real images end
// to end. Skipped, visibly, where namespaces can't be created (not root, no iproute2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { spawnStage, stopProcesses, waitReady, type StageProcess } from '../src/cli/launcher.js';
import type { ProcessName } from '../src/stage/setup.js';
import { repoRoot } from './helpers.js';

const tag = `fp${process.pid % 100000}`;
const HOSTS = ['a', 'b', 'c', 'd'].map((h, i) => ({ ns: `${tag}-${h}`, ip: `10.77.${process.pid % 200}.${i + 1}` }));
const BRIDGE_NS = `${tag}-br`;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const inNs = (ns: string, ...args: string[]) => ip('netns', 'exec', ns, ...args);

function canCreateNamespaces(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    ip('netns', 'add', `${tag}-probe`);
    ip('netns', 'del', `${tag}-probe`);
    return undefined;
  } catch (err) {
    return `cannot create network namespaces: ${(err as Error).message.split('\n')[0]}`;
  }
}

function createHosts(): void {
  ip('netns', 'add', BRIDGE_NS);
  inNs(BRIDGE_NS, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
  inNs(BRIDGE_NS, 'ip', 'link', 'set', 'br0', 'up');
  HOSTS.forEach(({ ns, ip: addr }, i) => {
    ip('netns', 'add', ns);
    // One veth pair per host: eth0 inside the host, its peer on the bridge.
    ip('link', 'add', `${tag}h${i}`, 'netns', ns, 'type', 'veth', 'peer', 'name', `${tag}p${i}`, 'netns', BRIDGE_NS);
    inNs(ns, 'ip', 'link', 'set', `${tag}h${i}`, 'name', 'eth0');
    inNs(ns, 'ip', 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
    inNs(ns, 'ip', 'link', 'set', 'eth0', 'up');
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    inNs(BRIDGE_NS, 'ip', 'link', 'set', `${tag}p${i}`, 'master', 'br0');
    inNs(BRIDGE_NS, 'ip', 'link', 'set', `${tag}p${i}`, 'up');
  });
}

function removeHosts(): void {
  for (const ns of [...HOSTS.map((h) => h.ns), BRIDGE_NS]) {
    try {
      ip('netns', 'del', ns);
    } catch {}
  }
}

function run(ns: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, out });
    });
  });
}

test('broker mode across four network-namespace hosts: real images end to end', async (t) => {
  const why = canCreateNamespaces();
  if (why) return t.skip(why);
  const [a, b, c, d] = HOSTS as [(typeof HOSTS)[0], (typeof HOSTS)[0], (typeof HOSTS)[0], (typeof HOSTS)[0]];
  const procs: StageProcess[] = [];
  try {
    createHosts();
    const connect = [
      'transport.mode=broker',
      'log.level=warn',
      'broker.heartbeat_ms=300',
      'detect.model.decode=true',
      `broker.ingest=tcp://${a.ip}:5560`,
      `broker.detect=tcp://${a.ip}:5561`,
      `broker.classify=tcp://${a.ip}:5562`,
      `broker.sink=tcp://${a.ip}:5563`,
    ];
    const start = async (stage: ProcessName, host: { ns: string }, sets: string[]) => {
      const proc = spawnStage(stage, { flags: { profile: 'noop', set: sets }, stdio: 'pipe', wrap: ['ip', 'netns', 'exec', host.ns] });
      procs.push(proc);
      await waitReady(proc, 60_000);
      return proc;
    };
    // The broker binds its host's address; everyone else connects to it.
    await start('broker', a, [...connect, ...['ingest', 'detect', 'classify', 'sink'].map((p, i) => `broker.${p}=tcp://${a.ip}:${5560 + i}`)]);
    await start('ingest', a, [...connect, `transport.clients=tcp://${a.ip}:5555`]);
    await Promise.all([start('detect', b, connect), start('detect', b, connect), start('classify', c, connect), start('sink', c, connect)]);

    const samples = path.join(repoRoot, 'samples');
    const client = await run(d.ns, [process.execPath, path.join(repoRoot, 'bin/framepipe.js'), 'infer', '--json', '-e', `tcp://${a.ip}:5555`, samples], 60_000);
    assert.equal(client.code, 0, client.out);
    const replies = client.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { ok: boolean; width: number; height: number });
    assert.equal(replies.length, 6, client.out);
    for (const r of replies) {
      assert.equal(r.ok, true);
      assert.ok(r.width > 0 && r.height > 0, 'decoded on the detect host');
    }
    // Status from the client's host lists both detect replicas with the host they run on.
    const status = await run(d.ns, [process.execPath, path.join(repoRoot, 'bin/framepipe.js'), 'status', '--json', '--connect', `tcp://${a.ip}:5560`], 30_000);
    assert.equal(status.code, 0, status.out);
    const { peers, stats } = JSON.parse(status.out.slice(status.out.indexOf('{'))) as { peers: { stage: string; done: number }[]; stats: { hedged: number } };
    const detects = peers.filter((p) => p.stage === 'detect');
    assert.equal(detects.length, 2);
    // Every request once, plus any copy the broker hedged to an idle replica (timing: a cold first
    // decode); the broker counts hedges of every hop together.
    const done = detects.reduce((s, p) => s + p.done, 0);
    assert.ok(done >= 6 && done <= 6 + stats.hedged, `detect replicas did ${done} jobs for 6 requests; broker ${JSON.stringify(stats)}`);
  } finally {
    await stopProcesses(procs);
    removeHosts();
  }
});
