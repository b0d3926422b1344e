import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|tiff?|avif|bmp)$/i;
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Expands the paths a user gives: files as they are, folders to their images in natural order (frame2 before frame10). */
export function expandImages(inputs: string[]): string[] {
  const out: string[] = [];
  for (const input of inputs) {
    let stat;
    try {
      stat = statSync(input);
    } catch {
      throw new Error(`${input}: no such file or folder`);
    }
    if (stat.isDirectory()) {
      const names = readdirSync(input).filter((n) => IMAGE_EXT.test(n)).sort(collator.compare);
      out.push(...names.map((n) => path.join(input, n)));
    } else {
      out.push(input);
    }
  }
  return out;
}
