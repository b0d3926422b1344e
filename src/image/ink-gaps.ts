import type { RgbImage } from './decode.js';

/**
 * Which columns of a text-line image hold no ink: 1 for an empty column, 0 for ink.
 *
 * Ink is told from paper by Otsu's threshold on the grey levels, and the paper is whichever side
 * covers more pixels, so dark-on-light and light-on-dark lines both work. A line with too little
 * contrast to split reports ink everywhere: no column is claimed empty on weak evidence.
 *
 * Only rows from `band` to `1 − band` of the height count (e.g. 0.06: all of every glyph but the
 * slivers of neighbouring lines a loose crop catches at its edges; 0.2: the letters' bodies).
 */
export function emptyColumns(img: RgbImage, band: number): Uint8Array {
  const { width, height, data } = img;
  const grey = new Uint8Array(width * height);
  const hist = new Float64Array(256);
  for (let i = 0, j = 0; i < grey.length; i++, j += 3) {
    const g = (data[j]! * 299 + data[j + 1]! * 587 + data[j + 2]! * 114 + 500) / 1000;
    grey[i] = g;
    hist[g | 0]!++;
  }
  const { threshold, separation } = otsu(hist, grey.length);
  const empty = new Uint8Array(width);
  if (separation < 0.5) return empty;
  let below = 0;
  for (let v = 0; v <= threshold; v++) below += hist[v]!;
  const inkIsDark = below < grey.length / 2;
  const y0 = Math.floor(height * band);
  const y1 = Math.ceil(height * (1 - band));
  for (let x = 0; x < width; x++) {
    let ink = 0;
    for (let y = y0; y < y1; y++) {
      const v = grey[y * width + x]!;
      if (inkIsDark ? v <= threshold : v > threshold) ink++;
    }
    // One stray pixel (JPEG ringing, dust) does not make a column inked.
    empty[x] = ink <= 1 ? 1 : 0;
  }
  return empty;
}

/** Longest run of empty columns inside [x0, x1). */
export function longestEmptyRun(empty: Uint8Array, x0: number, x1: number): number {
  let best = 0;
  let run = 0;
  const end = Math.min(x1, empty.length);
  for (let x = Math.max(0, x0); x < end; x++) {
    run = empty[x] ? run + 1 : 0;
    if (run > best) best = run;
  }
  return best;
}

/**
 * Otsu's threshold, and how well it separates the two classes: the between-class variance
 * over the total variance (0 for a flat image, near 1 for clean two-tone text).
 */
function otsu(hist: Float64Array, n: number): { threshold: number; separation: number } {
  let sum = 0;
  let sumSq = 0;
  for (let v = 0; v < 256; v++) {
    sum += v * hist[v]!;
    sumSq += v * v * hist[v]!;
  }
  const total = sumSq / n - (sum / n) ** 2;
  let w0 = 0;
  let sum0 = 0;
  let best = -1;
  let threshold = 127;
  for (let v = 0; v < 256; v++) {
    w0 += hist[v]!;
    if (w0 === 0) continue;
    const w1 = n - w0;
    if (w1 === 0) break;
    sum0 += v * hist[v]!;
    const m0 = sum0 / w0;
    const m1 = (sum - sum0) / w1;
    const between = (w0 * w1 * (m0 - m1) ** 2) / (n * n);
    if (between > best) {
      best = between;
      threshold = v;
    }
  }
  return { threshold, separation: total > 0 ? best / total : 0 };
}
