/**
 * Renders the demo images in samples/ and samples/expected.json (file → lines of text, in
 * reading order). The images are committed; run this only to change them:
 *   npm run samples
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderTextImage, type RenderTextOptions } from '../src/image/render-text.js';

const samplesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../samples');

interface Sample extends RenderTextOptions {
  file: string;
  /** What a reader sees, line by line; for a turned line, its text read the right way up. */
  expected: string[];
}

const dark = { background: '#ffffff', color: '#1a1a1a' };
const light = { background: '#17324d', color: '#f5f5f0' };

export const samples: Sample[] = [
  { file: 'gate-sign.jpg', lines: ['Gate 12 now boarding'], font: 'DejaVu Sans', size: 56, format: 'jpeg', ...light, expected: ['Gate 12 now boarding'] },
  {
    file: 'paragraph.png',
    lines: [
      'The train to Cambridge leaves from',
      'platform four at half past nine.',
      'Please keep your ticket with you',
      'until you reach the exit gates.',
    ],
    font: 'DejaVu Serif',
    size: 24,
    format: 'png',
    ...dark,
    expected: [
      'The train to Cambridge leaves from',
      'platform four at half past nine.',
      'Please keep your ticket with you',
      'until you reach the exit gates.',
    ],
  },
  {
    file: 'receipt.png',
    lines: ['Coffee beans 500g   8.90', 'Oat milk 1L          2.15', 'Rye bread            3.40', 'Total               14.45'],
    font: 'Liberation Mono',
    size: 22,
    format: 'png',
    ...dark,
    expected: ['Coffee beans 500g', '8.90', 'Oat milk 1L', '2.15', 'Rye bread', '3.40', 'Total', '14.45'],
  },
  {
    file: 'upside-down.png',
    lines: ['This line is upright', { text: 'This one is upside down', rotate: 180 }],
    font: 'Liberation Sans',
    size: 36,
    format: 'png',
    ...dark,
    expected: ['This line is upright', 'This one is upside down'],
  },
  {
    file: 'tilted.jpg',
    lines: ['Fresh bread baked daily', 'Open from 7 until 19'],
    font: 'Liberation Serif',
    size: 36,
    rotate: -5,
    format: 'jpeg',
    ...dark,
    expected: ['Fresh bread baked daily', 'Open from 7 until 19'],
  },
  {
    file: 'night-notice.jpg',
    lines: ['Platform 3 closed', 'Please use the east exit'],
    font: 'Liberation Sans',
    size: 40,
    format: 'jpeg',
    background: '#101010',
    color: '#ffd23f',
    expected: ['Platform 3 closed', 'Please use the east exit'],
  },
];

async function main(): Promise<void> {
  mkdirSync(samplesDir, { recursive: true });
  const expected: Record<string, string[]> = {};
  for (const { file, expected: lines, ...options } of samples) {
    const bytes = await renderTextImage(options);
    writeFileSync(path.join(samplesDir, file), bytes);
    expected[file] = lines;
    console.log(`${file}: ${bytes.length} bytes`);
  }
  writeFileSync(path.join(samplesDir, 'expected.json'), `${JSON.stringify(expected, null, 2)}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
