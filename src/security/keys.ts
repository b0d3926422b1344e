import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as zmq from 'zeromq';
import { ConfigError } from '../config/errors.js';
import type { SecurityConfig } from '../config/schema.js';
import { isCurveKey, z85Decode } from './z85.js';

/**
 * Key files, as `framepipe keygen` writes them: one key per line, `#` starts a comment, a line is
 * either a bare Z85 key or `public_key=KEY` / `secret_key=KEY`. NAME.public holds the public key,
 * NAME.secret (mode 0600) both keys.
 */
export interface KeyFile {
  publicKeys: string[];
  secretKey?: string;
}

export function readKeyFile(file: string): KeyFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read key file ${file}: ${(err as Error).message}`, { cause: err });
  }
  const out: KeyFile = { publicKeys: [] };
  const bare: string[] = [];
  for (const [n, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=', 1);
    // Z85 has '=' in its alphabet, so a label is only what a known name before '=' is.
    const label = eq > 0 ? line.slice(0, eq).trim() : '';
    const key = label === 'public_key' || label === 'secret_key' ? line.slice(eq + 1).trim() : line;
    if (!isCurveKey(key)) throw new ConfigError(`${file}:${n + 1}: not a CURVE key (40 Z85 characters)`);
    if (label === 'secret_key') out.secretKey = key;
    else if (label === 'public_key') out.publicKeys.push(key);
    else bare.push(key);
  }
  out.publicKeys.push(...bare);
  return out;
}

function keyOrFile(value: string, what: string, pick: (file: KeyFile, name: string) => string | undefined): string {
  if (value.startsWith('@')) {
    const file = value.slice(1);
    const key = pick(readKeyFile(file), file);
    if (!key) throw new ConfigError(`${what}: no suitable key in ${file}`);
    return key;
  }
  if (!isCurveKey(value)) throw new ConfigError(`${what}: not a CURVE key (40 Z85 characters, or @path to a key file)`);
  return value;
}

/** A secret key given as Z85 or `@file` (a `.secret` file, or a file holding just the secret key). */
export function secretKeyFrom(value: string, what: string): string {
  return keyOrFile(value, what, (f) => f.secretKey ?? (f.publicKeys.length === 1 ? f.publicKeys[0] : undefined));
}

/** A public key given as Z85 or `@file` (a `.public` or `.secret` file). */
export function publicKeyFrom(value: string, what: string): string {
  return keyOrFile(value, what, (f) => f.publicKeys[0]);
}

export interface ServerCurve {
  secretKey: string;
  /** Client public keys let in, 32 raw bytes each; empty = any client. */
  allowed: Buffer[];
}

/** `security.*` checked and its files read; undefined when CURVE is off. Throws ConfigError naming the key. */
export function serverCurve(security: SecurityConfig): ServerCurve | undefined {
  if (!security.curve) return undefined;
  if (!security.server_secret_key) throw new ConfigError('security.server_secret_key: required when security.curve is true');
  const secretKey = secretKeyFrom(security.server_secret_key, 'security.server_secret_key');
  const entries = typeof security.allowed_clients === 'string' ? security.allowed_clients.split(/[\s,]+/) : security.allowed_clients;
  const allowed: Buffer[] = [];
  for (const entry of entries.map((e) => e.trim()).filter(Boolean)) {
    if (entry.startsWith('@')) {
      const keys = readKeyFile(entry.slice(1)).publicKeys;
      if (keys.length === 0) throw new ConfigError(`security.allowed_clients: no public key in ${entry.slice(1)}`);
      allowed.push(...keys.map(z85Decode));
    } else if (isCurveKey(entry)) {
      allowed.push(z85Decode(entry));
    } else {
      throw new ConfigError(`security.allowed_clients: '${entry.slice(0, 8)}…' is not a CURVE key (40 Z85 characters, or @path)`);
    }
  }
  return { secretKey, allowed };
}

/** Writes DIR/NAME.public and DIR/NAME.secret (mode 0600) with a fresh key pair; returns their paths and the public key. */
export function writeKeyPair(dir: string, name: string): { publicFile: string; secretFile: string; publicKey: string } {
  const { publicKey, secretKey } = zmq.curveKeyPair();
  mkdirSync(dir, { recursive: true });
  const publicFile = path.join(dir, `${name}.public`);
  const secretFile = path.join(dir, `${name}.secret`);
  if (existsSync(secretFile)) throw new Error(`${secretFile} exists; remove it or pick another --name`);
  const stamp = `# framepipe CURVE key '${name}', made ${new Date().toISOString()}`;
  writeFileSync(secretFile, `${stamp}\n# SECRET: keep it on this host, readable by framepipe only\npublic_key=${publicKey}\nsecret_key=${secretKey}\n`, {
    mode: 0o600,
    flag: 'wx',
  });
  chmodSync(secretFile, 0o600);
  // After the secret file: an existing pair is never half overwritten.
  writeFileSync(publicFile, `${stamp}\n# public: give it to the other side\npublic_key=${publicKey}\n`, { mode: 0o644 });
  return { publicFile, secretFile, publicKey };
}

/** The pipeline's stage-to-stage key pair (Z85). */
export interface StageKeys {
  publicKey: string;
  secretKey: string;
}

/** `security.stages` checked and its key file read; undefined when off. Throws ConfigError naming the key. */
export function stageCurve(security: SecurityConfig): StageKeys | undefined {
  if (!security.stages) return undefined;
  if (!security.stage_key_file) throw new ConfigError('security.stage_key_file: required when security.stages is true');
  const file = readKeyFile(security.stage_key_file.replace(/^@/, ''));
  if (!file.secretKey || file.publicKeys.length === 0) {
    throw new ConfigError(`security.stage_key_file: ${security.stage_key_file} must be a .secret file from framepipe keygen (public_key= and secret_key=)`);
  }
  return { publicKey: file.publicKeys[0]!, secretKey: file.secretKey };
}
