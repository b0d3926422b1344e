import * as zmq from 'zeromq';
import { StartupError } from '../config/errors.js';
import { ZAP_DOMAIN } from '../security/zap.js';

/**
 * Every socket framepipe opens is made here, so that options are set in one place and named
 * after the ZeroMQ option they set.
 */
export interface HopOptions {
  /** ZMQ_SNDHWM / ZMQ_RCVHWM, messages. Small: a deep zmq queue hides backlog and is lost if a peer dies. */
  hwm: number;
  /** ZMQ_LINGER, ms: how long close() may hold unsent messages. 0 drops them. */
  lingerMs: number;
}

export function pullSocket(options: HopOptions): zmq.Pull {
  return new zmq.Pull({ receiveHighWaterMark: options.hwm, linger: options.lingerMs });
}

export function pushSocket(options: HopOptions): zmq.Push {
  // ZMQ_IMMEDIATE: queue only to peers that completed the handshake, so a dead endpoint
  // does not swallow messages into a pipe that will never drain.
  return new zmq.Push({ sendHighWaterMark: options.hwm, linger: options.lingerMs, immediate: true });
}

export interface RouterOptions extends HopOptions {
  /** ZMQ_MAXMSGSIZE, bytes: a peer sending a larger message is disconnected. -1 = no limit. */
  maxMessageSize: number;
  /**
   * ZMQ_CURVE_SERVER with this ZMQ_CURVE_SECRETKEY (Z85), and ZMQ_ZAP_DOMAIN so the process's ZAP
   * handler (src/security/zap.ts) decides which client keys get in. Unset: plain (NULL mechanism).
   */
  curveSecretKey?: string;
}

export function routerSocket(options: RouterOptions): zmq.Router {
  // ZMQ_ROUTER_MANDATORY off: a reply to a client that went away is dropped, never blocks.
  return new zmq.Router({
    sendHighWaterMark: Math.max(options.hwm, 1000),
    receiveHighWaterMark: Math.max(options.hwm, 1000),
    linger: options.lingerMs,
    maxMessageSize: options.maxMessageSize,
    mandatory: false,
    ...(options.curveSecretKey ? { curveServer: true, curveSecretKey: options.curveSecretKey, zapDomain: ZAP_DOMAIN } : {}),
  });
}

export function dealerSocket(options: HopOptions & { routingId?: string }): zmq.Dealer {
  const dealer = new zmq.Dealer({ sendHighWaterMark: options.hwm, receiveHighWaterMark: options.hwm, linger: options.lingerMs });
  if (options.routingId) dealer.routingId = options.routingId;
  return dealer;
}

/**
 * The broker's side of one rendezvous point. ROUTER so that it knows who sent each message and
 * can address replicas and ingests by routing id; ZMQ_ROUTER_MANDATORY off, so a message to a
 * peer that went away is dropped (its request then times out at ingest) instead of blocking.
 */
export function brokerRouter(options: HopOptions & { maxMessageSize: number }): zmq.Router {
  return routerSocket(options);
}

export interface LinkOptions extends HopOptions {
  /** ZMQ_ROUTING_ID: the name the broker knows this process by; kept across reconnects. */
  routingId: string;
  /** ZMQ_RECONNECT_IVL, ms: first retry after the broker's connection drops. */
  reconnectMs: number;
  /** ZMQ_RECONNECT_IVL_MAX, ms: retries back off exponentially up to this. */
  reconnectMaxMs: number;
}

/** A replica's or an ingest's one socket to the broker: DEALER, connected, reconnecting with back-off. */
export function linkDealer(options: LinkOptions): zmq.Dealer {
  const dealer = new zmq.Dealer({
    sendHighWaterMark: options.hwm,
    receiveHighWaterMark: Math.max(options.hwm, 1000),
    linger: options.lingerMs,
    reconnectInterval: options.reconnectMs,
    reconnectMaxInterval: options.reconnectMaxMs,
  });
  dealer.routingId = options.routingId;
  return dealer;
}

/** bind() with a start-up error that says which endpoint is taken. */
export async function bindOrFail(socket: zmq.Socket, endpoint: string, role: string): Promise<void> {
  try {
    await socket.bind(endpoint);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE') {
      throw new StartupError('ADDRESS_IN_USE', `${role}: ${endpoint} is already in use (is another framepipe running?)`, { cause: err });
    }
    throw new StartupError('START_FAILED', `${role}: cannot bind ${endpoint}: ${(err as Error).message}`, { cause: err });
  }
}

export { zmq };
