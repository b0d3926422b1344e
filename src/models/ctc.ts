/** One character the CTC decoder emitted, with where it sits on the time axis. */
export interface CtcToken {
  /** Class index (0 is the blank and never appears here). */
  index: number;
  /** Probability at the first step of the run (PaddleOCR's CTCLabelDecode score). */
  prob: number;
  /** First and last time step of the run of this class. */
  start: number;
  end: number;
}

/** ctcGreedy() of every row of a `batch × steps × classes` output. */
export function ctcRows(probs: Float32Array, dims: readonly number[]): CtcToken[][] {
  const [batch, steps, classes] = dims as [number, number, number];
  return Array.from({ length: batch }, (_, k) => ctcGreedy(probs, k * steps * classes, steps, classes));
}

/**
 * Greedy CTC decoding of one sequence: argmax per step, merge runs, drop blanks. `probs` holds
 * `steps × classes` values from `offset`. Hot path (steps × 6625 per line), so one flat loop.
 */
export function ctcGreedy(probs: Float32Array, offset: number, steps: number, classes: number): CtcToken[] {
  const tokens: CtcToken[] = [];
  let prev = 0;
  for (let t = 0; t < steps; t++) {
    const base = offset + t * classes;
    let best = 0;
    let bestP = probs[base]!;
    for (let c = 1; c < classes; c++) {
      const p = probs[base + c]!;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    if (best !== 0) {
      const last = tokens[tokens.length - 1];
      if (best === prev && last) last.end = t;
      else tokens.push({ index: best, prob: bestP, start: t, end: t });
    }
    prev = best;
  }
  return tokens;
}

/** Ink-free column runs between two characters, in rec input pixels. */
export interface EmptyRun {
  /** Counting ink anywhere in the line's height (bars of T, hooks of j and y close the gap). */
  full: number;
  /** Counting ink in the middle rows only (the letters' bodies). */
  core: number;
}

/** Evidence for word gaps in one line, besides the spaces the model emitted. */
export interface GapRule {
  /** Width of one time step in rec input pixels (8 for PP-OCR rec). */
  stepPx: number;
  /** Rec input height, pixels: stands in for the text size. */
  lineHeightPx: number;
  /** Longest ink-free column runs inside [x0, x1). */
  emptyRun(x0: number, x1: number): EmptyRun;
}

/**
 * Text of a decoded line, with word spaces restored.
 *
 * PP-OCRv4 rec emits ' ' (its last class) for some word gaps only. The others are found in the
 * line image: between the time steps of two consecutive characters lies a run of columns
 * without ink. Letters of a word are set close (a few pixels, or none), words a space apart
 * (about a third of the text height). The body gap must be wide both in absolute terms (22% of
 * the line height) and against the line's own letter gaps (2.5 × their 30th percentile: a low
 * quantile, because in a line of short words half the gaps are word gaps), so that a loosely
 * set or monospaced line does not get a space between every letter and a tight one still gets
 * its word breaks. The full-height gap must be at least half that, so that
 * overhangs count the way a reader sees them: the bar of "Th" closes the gap ("The"), the hook
 * of "d j" does not ("and jam").
 */
export function tokensToText(tokens: CtcToken[], dict: readonly string[], rule: GapRule): string {
  const chars = tokens.map((t) => dict[t.index - 1] ?? '');
  const mid = (t: CtcToken): number => ((t.start + t.end + 1) / 2) * rule.stepPx;
  const runs: EmptyRun[] = [];
  for (let i = 0; i + 1 < tokens.length; i++) runs.push(rule.emptyRun(mid(tokens[i]!), mid(tokens[i + 1]!)));
  const letterGaps = runs.filter((_, i) => chars[i] !== ' ' && chars[i + 1] !== ' ').map((r) => r.core);
  const wordGap = Math.max(rule.lineHeightPx * 0.22, quantile(letterGaps, 0.3) * 2.5);
  const isWordGap = (r: EmptyRun): boolean => r.core >= wordGap && r.full >= wordGap / 2;
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const prev = chars[i - 1];
    if (ch !== ' ' && prev !== undefined && prev !== ' ' && isWordGap(runs[i - 1]!) && spaceAllowed(chars[i - 2], prev, ch)) out += ' ';
    // The model's own space, or ours; never two.
    if (ch === ' ' && out.endsWith(' ')) continue;
    out += ch;
  }
  return asciiPunctuation(out.trim());
}

/**
 * The Chinese dictionary holds full-width twins of the ASCII signs (，．：（）…) and the model
 * picks them now and then in Latin text. In a line without CJK characters they become ASCII.
 */
function asciiPunctuation(text: string): string {
  if (/[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]/.test(text)) return text;
  return text.replace(/[\uff01-\uff5e]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0));
}

/**
 * Punctuation hugs its word: a full stop or comma after a narrow digit, a bracket, or the
 * decimal point of a number ("14.45") leaves a wide empty run without being a word break.
 */
function spaceAllowed(twoBack: string | undefined, before: string, after: string): boolean {
  if (/^[.,:;!?%)\]}'"’”]$/.test(after) || /^[(\[{'"‘“]$/.test(before)) return false;
  const decimal = (before === '.' || before === ',') && /^\d$/.test(after) && twoBack !== undefined && /^\d$/.test(twoBack);
  return !decimal;
}

/** The q-quantile (0..1) of a list, linear between ranks; 0 for an empty list. */
function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const r = q * (s.length - 1);
  const lo = Math.floor(r);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (r - lo);
}
