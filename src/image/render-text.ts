import sharp from 'sharp';

/** A line of text, optionally turned on its own (e.g. 180 for one upside-down line). */
export type TextLineSpec = string | { text: string; rotate?: number };

export interface RenderTextOptions {
  lines: TextLineSpec[];
  /** A fontconfig family name, e.g. 'DejaVu Sans', 'Liberation Mono'. */
  font: string;
  /** Font size in pixels. */
  size: number;
  /** Turns the whole rendered image by this many degrees (clockwise), growing the canvas to fit. */
  rotate?: number;
  format: 'png' | 'jpeg';
  /** CSS colours. */
  background: string;
  color: string;
  /** Empty border around the text, pixels (default: one font size). */
  margin?: number;
  /** Baseline-to-baseline distance as a multiple of the size (default 1.5). */
  lineHeight?: number;
  /** JPEG quality (default 90). */
  quality?: number;
}

/**
 * Renders lines of text to an encoded image through librsvg (SVG text, system fonts), the way
 * the tests and the demo samples make images whose text is known exactly. The canvas is
 * generous, then trimmed to the ink and given an even margin, because SVG cannot measure text.
 */
export async function renderTextImage(opts: RenderTextOptions): Promise<Buffer> {
  const { size, font } = opts;
  const margin = opts.margin ?? size;
  const lineHeight = (opts.lineHeight ?? 1.5) * size;
  const specs = opts.lines.map((l) => (typeof l === 'string' ? { text: l, rotate: 0 } : { text: l.text, rotate: l.rotate ?? 0 }));
  const longest = Math.max(1, ...specs.map((s) => s.text.length));
  const width = Math.ceil(longest * size * 0.75 + 4 * size);
  const height = Math.ceil(specs.length * lineHeight + 4 * size);
  const left = 2 * size;
  const texts = specs.map((s, i) => {
    const baseline = 2 * size + (i + 0.75) * lineHeight;
    // A turned line turns about its own middle; it is centred so that its extent is known.
    const turned = s.rotate !== 0;
    const x = turned ? width / 2 : left;
    const anchor = turned ? 'middle' : 'start';
    const transform = turned ? ` transform="rotate(${s.rotate} ${width / 2} ${baseline - size * 0.35})"` : '';
    return `<text x="${x}" y="${baseline}" text-anchor="${anchor}"${transform}>${escapeXml(s.text)}</text>`;
  });
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<rect width="100%" height="100%" fill="${escapeXml(opts.background)}"/>` +
    `<g font-family="${escapeXml(font)}" font-size="${size}" fill="${escapeXml(opts.color)}" xml:space="preserve">${texts.join('')}</g>` +
    `</svg>`;
  // Trim first (the background is uniform there), then add the margin back evenly.
  const trimmed = await sharp(Buffer.from(svg)).flatten({ background: opts.background }).trim({ threshold: 10 }).toBuffer();
  let image = sharp(trimmed).extend({ top: margin, bottom: margin, left: margin, right: margin, background: opts.background });
  if (opts.rotate) image = sharp(await image.png().toBuffer()).rotate(opts.rotate, { background: opts.background });
  return opts.format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: opts.quality ?? 90 }).toBuffer();
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
