import { createServer } from 'node:net';

/** Ports the OS says are free on loopback right now (bound to 0, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * `--set` overrides that put every hop of one pipeline on free loopback ports, so a demo, a test
 * or a benchmark never collides with a pipeline already running on the default ports.
 */
export async function loopbackTransport(): Promise<string[]> {
  const [clients, detect, classify, sink, replies, bIngest, bDetect, bClassify, bSink] = await freePorts(9);
  return [
    // Broker mode's rendezvous points (unused in direct mode).
    `broker.ingest=tcp://127.0.0.1:${bIngest}`,
    `broker.detect=tcp://127.0.0.1:${bDetect}`,
    `broker.classify=tcp://127.0.0.1:${bClassify}`,
    `broker.sink=tcp://127.0.0.1:${bSink}`,
    `transport.clients=tcp://127.0.0.1:${clients}`,
    `transport.detect=tcp://127.0.0.1:${detect}`,
    `transport.classify=tcp://127.0.0.1:${classify}`,
    `transport.sink=tcp://127.0.0.1:${sink}`,
    `transport.replies=tcp://127.0.0.1:${replies}`,
  ];
}
