import * as zmq from 'zeromq';
import type { Logger } from '../log.js';
import { z85Encode } from './z85.js';

/** ZAP domain of framepipe's CURVE servers; set as ZMQ_ZAP_DOMAIN so libzmq asks the handler. */
export const ZAP_DOMAIN = 'framepipe';
const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';

/**
 * A ZAP handler (ZeroMQ RFC 27) in this process's default context: libzmq asks it about every
 * CURVE handshake on a socket with a ZAP domain, and lets the peer in only on status 200. A
 * client whose public key is not in `allowed` is refused (empty `allowed`: every CURVE client
 * that completed the handshake, i.e. that knows the server's public key). A refused peer gets
 * no service at all: the connection never completes.
 */
export class ZapHandler {
  private readonly socket = new zmq.Router({ linger: 0 });
  private loop: Promise<void> = Promise.resolve();
  private readonly allowed: Set<string>;
  refused = 0;
  /** When each refused key (or address, for non-CURVE peers) was last logged: a refused client retries every reconnect interval. */
  private readonly lastLogged = new Map<string, number>();

  private constructor(
    allowed: Buffer[],
    private readonly log: Logger,
  ) {
    this.allowed = new Set(allowed.map((k) => k.toString('hex')));
  }

  static async start(allowed: Buffer[], log: Logger): Promise<ZapHandler> {
    const zap = new ZapHandler(allowed, log);
    await zap.socket.bind(ZAP_ENDPOINT);
    zap.loop = zap.serve();
    return zap;
  }

  private async serve(): Promise<void> {
    for await (const frames of this.socket) {
      // [routing id, empty, version, request id, domain, address, identity, mechanism, credentials…]
      const [peer, , version, requestId, domain, address, , mechanism, key] = frames;
      if (!peer || !requestId) continue;
      let status = '400';
      let text = 'not allowed';
      if (String(version) !== '1.0') text = 'unsupported ZAP version';
      else if (String(mechanism) !== 'CURVE' || !key || key.length !== 32) text = 'CURVE required';
      else if (String(domain) !== ZAP_DOMAIN) text = 'unknown domain';
      else if (this.allowed.size === 0 || this.allowed.has(key.toString('hex'))) {
        status = '200';
        text = 'OK';
      }
      const who = key?.length === 32 ? key.toString('hex') : String(address);
      if (status !== '200' && this.shouldLog(who)) {
        this.log.warn(
          { address: String(address), mechanism: String(mechanism), client_key: key?.length === 32 ? z85Encode(key) : undefined, reason: text },
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
