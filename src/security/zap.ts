import * as zmq from 'zeromq';
import type { Logger } from '../log.js';
import { z85Encode } from './z85.js';

/** ZAP domain of ingest's clients ROUTER with CURVE; set as ZMQ_ZAP_DOMAIN so libzmq asks the handler. */
export const ZAP_DOMAIN = 'framepipe';
/** ZAP domain of the stage-to-stage CURVE servers: only the pipeline's own key gets in. */
export const STAGE_ZAP_DOMAIN = 'framepipe-stages';
const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';

/**
 * The ZAP handler (ZeroMQ RFC 27) of this process's default context: libzmq asks it about every
 * CURVE handshake on a socket with a ZAP domain, and lets the peer in only on status 200. One per
 * process (one inproc endpoint per context); each domain has its own list of public keys (empty:
 * every CURVE client that completed the handshake, i.e. that knows the server's public key). A
 * refused peer gets no service at all: the connection never completes. Unknown domains and
 * other mechanisms are refused.
 */
export class ZapHandler {
  private readonly socket = new zmq.Router({ linger: 0 });
  private loop: Promise<void> = Promise.resolve();
  private readonly domains = new Map<string, Set<string>>();
  refused = 0;
  /** When each refused key (or address, for non-CURVE peers) was last logged: a refused client retries every reconnect interval. */
  private readonly lastLogged = new Map<string, number>();

  private constructor(private readonly log: Logger) {}

  private static running: Promise<ZapHandler> | undefined;

  /** Lets `allowed` (32-byte keys; empty = any) in on sockets of ZAP domain `domain`; starts the handler on first use. */
  static async allow(domain: string, allowed: Buffer[], log: Logger): Promise<ZapHandler> {
    ZapHandler.running ??= (async () => {
      const zap = new ZapHandler(log);
      await zap.socket.bind(ZAP_ENDPOINT);
      zap.loop = zap.serve();
      return zap;
    })();
    const zap = await ZapHandler.running;
    zap.domains.set(domain, new Set(allowed.map((k) => k.toString('hex'))));
    return zap;
  }

  private async serve(): Promise<void> {
    for await (const frames of this.socket) {
      // [routing id, empty, version, request id, domain, address, identity, mechanism, credentials…]
      const [peer, , version, requestId, domain, address, , mechanism, key] = frames;
      if (!peer || !requestId) continue;
      const allowed = this.domains.get(String(domain));
      let status = '400';
      let text = 'not allowed';
      if (String(version) !== '1.0') text = 'unsupported ZAP version';
      else if (String(mechanism) !== 'CURVE' || !key || key.length !== 32) text = 'CURVE required';
      else if (!allowed) text = 'unknown domain';
      else if (allowed.size === 0 || allowed.has(key.toString('hex'))) {
        status = '200';
        text = 'OK';
      }
      const who = key?.length === 32 ? key.toString('hex') : String(address);
      if (status !== '200' && this.shouldLog(who)) {
        this.log.warn(
          {
            domain: String(domain),
            address: String(address),
            mechanism: String(mechanism),
            client_key: key?.length === 32 ? z85Encode(key) : undefined,
            reason: text,
          },
          'client refused (logged once a minute per key)',
        );
      }
      if (status !== '200') this.refused++;
      // user id: the client's key, so it could be read from message metadata (ZMQ_MSG_PROPERTY User-Id).
      const user = status === '200' && key ? z85Encode(key) : '';
      await this.socket.send([peer, Buffer.alloc(0), '1.0', requestId, status, text, user, Buffer.alloc(0)]);
    }
  }

  private shouldLog(who: string): boolean {
    const now = Date.now();
    if (now - (this.lastLogged.get(who) ?? -Infinity) < 60_000) return false;
    if (this.lastLogged.size > 10_000) this.lastLogged.clear();
    this.lastLogged.set(who, now);
    return true;
  }

  async close(): Promise<void> {
    this.socket.close();
    await this.loop.catch(() => {});
  }
}
