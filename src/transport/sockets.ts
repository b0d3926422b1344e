import * as zmq from 'zeromq';
import { StartupError } from '../config/errors.js';
import { STAGE_ZAP_DOMAIN, ZAP_DOMAIN, ZapHandler } from '../security/zap.js';
import type { StageKeys } from '../security/keys.js';
import { z85Decode } from '../security/z85.js';
import type { Logger } from '../log.js';

/**
 * Every socket framepipe opens is made here, so that options are set in one place and named
 * after the ZeroMQ option they set.
 */
export interface HopOptions {
  /** ZMQ_SNDHWM / ZMQ_RCVHWM, messages. Small: a deep zmq queue hides backlog and is lost if a peer dies. */
  hwm: number;
  /** ZMQ_LINGER, ms: how long close() may hold unsent messages. 0 drops them. */
  lingerMs: number;
  /**
   * `security.stages`: the pipeline's key pair. bindOrFail() then makes the socket a CURVE server
   * (ZAP domain STAGE_ZAP_DOMAIN: only this key pair gets in), connectHop() a CURVE client.
   */
  curve?: StageKeys | undefined;
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

/** connect() of a stage-to-stage socket: as a CURVE client with the pipeline's keys when `curve` is set. */
export function connectHop(socket: zmq.Socket, endpoint: string, curve: StageKeys | undefined): void {
  if (curve) {
    socket.curveServerKey = curve.publicKey;
    socket.curvePublicKey = curve.publicKey;
    socket.curveSecretKey = curve.secretKey;
  }
  socket.connect(endpoint);
}

/**
 * bind() with a start-up error that says which endpoint is taken. With `curve` (stage-to-stage
 * hops under `security.stages`): a CURVE server that lets in only holders of the pipeline's key pair.
 */
export async function bindOrFail(socket: zmq.Socket, endpoint: string, role: string, curve?: StageKeys, log?: Logger): Promise<void> {
  if (curve) {
    if (!log) throw new Error(`${role}: a CURVE bind needs a logger for its ZAP handler`);
    await ZapHandler.allow(STAGE_ZAP_DOMAIN, [z85Decode(curve.publicKey)], log);
    socket.curveServer = true;
    socket.curveSecretKey = curve.secretKey;
    socket.zapDomain = STAGE_ZAP_DOMAIN;
  }
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
