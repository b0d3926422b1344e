import sharp from 'sharp';
import type { Detection } from '../protocol/types.js';
import type { RgbImage } from './decode.js';

/** Colours that stay readable on photos; one per label, picked by a hash of the label. */
const PALETTE = ['#ff3b30', '#34c759', '#007aff', '#ff9500', '#af52de', '#ffcc00', '#5ac8fa', '#ff2d55', '#a2845e', '#30d158'];

function colourOf(label: string): string {
  let h = 0;
  for (let i = 0; i < label.length; i++) h = (h * 31 + label.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length]!;
}

/** Labels and OCR text are user-visible data: escape them before they go into SVG markup. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** What is written next to a box: label and score, then the top class or the text read. */
function caption(d: Detection): string {
  const parts = [`${d.label} ${d.score.toFixed(2)}`];
  const top = d.classes?.[0];
  if (top) parts.push(`${top.label} ${top.score.toFixed(2)}`);
  if (d.text) parts.push(`“${d.text}”`);
  return parts.join(' · ');
}

/**
 * The image as a JPEG with every detection drawn: box (or text polygon), label and score, top
 * class or OCR text. The drawing is one SVG overlay composited by sharp, so no canvas library is
 * needed and the cost is one JPEG encode.
 */
export async function annotate(img: RgbImage, detections: readonly Detection[]): Promise<Buffer> {
  const { width, height } = img;
  const font = Math.max(10, Math.round(Math.min(width, height) / 40));
  const stroke = Math.max(1, Math.round(font / 6));
  const shapes: string[] = [];
  for (const d of detections) {
    const colour = colourOf(d.label);
    const [x1, y1, x2, y2] = d.box;
    if (d.polygon && d.polygon.length > 2) {
      const points = d.polygon.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
      shapes.push(`<polygon points="${points}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>`);
    } else {
      shapes.push(
        `<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${(y2 - y1).toFixed(1)}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>`,
      );
    }
    const text = caption(d);
    // Above the box when there is room, inside it otherwise; a filled band keeps it readable.
    const ty = y1 - font - 2 >= 0 ? y1 - font - 2 : y1;
    const tw = Math.min(width - x1, text.length * font * 0.6 + 4);
    shapes.push(`<rect x="${x1.toFixed(1)}" y="${ty.toFixed(1)}" width="${tw.toFixed(1)}" height="${font + 2}" fill="${colour}" fill-opacity="0.75"/>`);
    shapes.push(
      `<text x="${(x1 + 2).toFixed(1)}" y="${(ty + font - 1).toFixed(1)}" font-family="sans-serif" font-size="${font}" fill="#ffffff">${escapeXml(text)}</text>`,
    );
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${shapes.join('')}</svg>`;
  return sharp(img.data, { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .jpeg({ quality: 85 })
    .toBuffer();
}
