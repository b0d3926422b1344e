/** Z85 (ZeroMQ RFC 32), the text form of CURVE keys: 5 characters per 4 bytes. */
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]));

export function z85Decode(text: string): Buffer {
  if (text.length % 5 !== 0) throw new Error(`Z85 text must be a multiple of 5 characters, got ${text.length}`);
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const digit = VALUE.get(text[i + j]!);
      if (digit === undefined) throw new Error(`not a Z85 character: '${text[i + j]}'`);
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) throw new Error('Z85 group out of range');
    out.writeUInt32BE(value, (i / 5) * 4);
  }
  return out;
}

export function z85Encode(bytes: Buffer): string {
  if (bytes.length % 4 !== 0) throw new Error('Z85 input must be a multiple of 4 bytes');
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let value = bytes.readUInt32BE(i);
    let group = '';
    for (let j = 0; j < 5; j++) {
      group = ALPHABET[value % 85]! + group;
      value = Math.floor(value / 85);
    }
    out += group;
  }
  return out;
}

/** Whether `text` is a CURVE key: 40 Z85 characters (32 bytes). */
export function isCurveKey(text: string): boolean {
  if (text.length !== 40) return false;
  try {
    z85Decode(text);
    return true;
  } catch {
    return false;
  }
}
