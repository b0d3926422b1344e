// V8 .cpuprofile (what `node --cpu-prof` writes) → folded stacks → a flame graph SVG.
//
// Why hand-written: the npm renderers that take a .cpuprofile either emit HTML apps (0x,
// speedscope, clinic) or only read the pre-2016 tree format (`flamegraph`), and flamegraph.pl
// is not packaged here. Folding is 30 lines and the SVG follows Brendan Gregg's layout: one
// box per frame, width ∝ samples, callers below callees, siblings in alphabetical order, the
// full name and share in each box's tooltip. The folded text is the flamegraph.pl input format,
// so any other renderer can draw the same data.

/** The parts of Chrome DevTools' Profile object that --cpu-prof writes. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  /** µs on the monotonic clock that process.hrtime uses. */
  startTime: number;
  endTime: number;
  /** Node id of each sample's leaf frame. */
  samples: number[];
  /** µs between consecutive samples; the first is from startTime. */
  timeDeltas: number[];
}

export interface Folded {
  /** "root;caller;callee" → samples, the flamegraph.pl input. */
  stacks: Map<string, number>;
  /** Samples in the window, idle ones included. */
  total: number;
  /** Samples where the thread waited in the event loop. */
  idle: number;
  /** Leaf frame → samples: where the thread itself was running. */
  self: Map<string, number>;
  /** Wall time the window covers, ms. */
  windowMs: number;
}

/** Makes a frame's location short and stable across checkouts: path inside the repo or the package. */
export function frameName(fn: string, url: string, line: number): string {
  const name = fn || '(anonymous)';
  if (!url) return name; // (program), (garbage collector), native functions
  let where = url.replace(/^file:\/\//, '');
  const nm = where.lastIndexOf('/node_modules/');
  if (nm >= 0) where = where.slice(nm + '/node_modules/'.length);
  else where = where.replace(/^.*?\/(src|stages|scripts|bench)\//, '$1/');
  // tsx compiles each .ts module so that V8 sees every function at line 1: a line there says nothing.
  return where.endsWith('.ts') ? `${name} ${where}` : `${name} ${where}:${line + 1}`;
}

/** The location part of a frame name from frameName ("src/x.ts", "node:timers:438", "wasm://…"), or '' for native frames. */
export function frameLocation(frame: string): string {
  const at = frame.slice(frame.lastIndexOf(' ') + 1);
  return frame.includes(' ') && /[/:]/.test(at) ? at : '';
}

/**
 * Folds the samples taken between `fromUs` and `toUs` (hrtime µs; default the whole profile)
 * into stacks. "(idle)" samples are counted but left out of the stacks, so the graph shows what
 * the thread did when it was busy; "(program)" (V8/native work outside any JS frame) and
 * "(garbage collector)" stay in as frames of their own.
 */
export function foldProfile(profile: CpuProfile, fromUs = -Infinity, toUs = Infinity): Folded {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stackOf = new Map<number, string | null>();
  const stack = (id: number): string | null => {
    if (stackOf.has(id)) return stackOf.get(id)!;
    const frames: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const { functionName, url, lineNumber } = byId.get(cur)!.callFrame;
      if (functionName === '(root)' && !url) continue;
      frames.push(frameName(functionName, url, lineNumber));
    }
    const s = frames[0] === '(idle)' ? null : frames.reverse().join(';');
    stackOf.set(id, s);
    return s;
  };
  const stacks = new Map<string, number>();
  const self = new Map<string, number>();
  let t = profile.startTime;
  let total = 0;
  let idle = 0;
  let first = Infinity;
  let last = -Infinity;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    if (t < fromUs || t > toUs) return;
    first = Math.min(first, t);
    last = Math.max(last, t);
    total++;
    const s = stack(id);
    if (s === null) {
      idle++;
      return;
    }
    stacks.set(s, (stacks.get(s) ?? 0) + 1);
    const leaf = s.slice(s.lastIndexOf(';') + 1);
    self.set(leaf, (self.get(leaf) ?? 0) + 1);
  });
  return { stacks, total, idle, self, windowMs: total ? (last - first) / 1000 : 0 };
}

/**
 * Where a sample's time goes, by the leaf's package. A native or WebAssembly leaf is charged to
 * the nearest JavaScript frame that called it, marked "(native)" or "(wasm)": V8 names an addon's
 * C++ entry point but not its file, and wasm frames only by number.
 */
export function selfArea(stack: string): string {
  const frames = stack.split(';');
  const leaf = frames[frames.length - 1]!;
  if (leaf === '(garbage collector)') return 'GC';
  if (leaf === '(program)') return '(program): V8/native outside JS';
  let via = '';
  for (let i = frames.length - 1; i >= 0; i--) {
    const at = frameLocation(frames[i]!);
    if (!at) {
      via ||= ' (native)';
      continue;
    }
    if (at.startsWith('wasm://')) {
      via = ' (wasm)';
      continue;
    }
    if (at.startsWith('node:')) return `${at.replace(/:\d+$/, '')}${via}`;
    if (/^(src|stages|scripts|bench)\//.test(at)) return `framepipe ${at}${via}`;
    const parts = at.split('/');
    return `${parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}${via}`;
  }
  return 'native (no JS caller)';
}

/** The flamegraph.pl input: one "frame;frame;frame count" line per distinct stack. */
export function foldedText(folded: Folded): string {
  return [...folded.stacks].map(([s, n]) => `${s} ${n}`).join('\n') + '\n';
}

interface Box {
  name: string;
  samples: number;
  children: Map<string, Box>;
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Colour by where the frame lives, so the layers read at a glance: this project's code orange,
 * npm packages yellow, Node's own JavaScript aqua, WebAssembly (opencv.js) purple, V8/native
 * (program, GC, addons' entry points) red. The hue varies a little with the name so neighbours stay distinguishable.
 */
function colour(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  const jitter = (h % 1000) / 1000;
  const at = frameLocation(name);
  if (!at) return `rgb(${200 + Math.round(55 * jitter)},${60 + Math.round(40 * jitter)},${50 + Math.round(30 * jitter)})`; // native / V8 / GC
  if (/^(src|stages|scripts|bench)\//.test(at)) return `rgb(${230 + Math.round(25 * jitter)},${120 + Math.round(50 * jitter)},40)`; // framepipe
  if (at.startsWith('node:')) return `rgb(${80 + Math.round(40 * jitter)},${190 + Math.round(40 * jitter)},${190 + Math.round(40 * jitter)})`; // Node's JS
  if (at.startsWith('wasm://')) return `rgb(${160 + Math.round(40 * jitter)},${120 + Math.round(40 * jitter)},220)`; // WebAssembly
  return `rgb(${220 + Math.round(35 * jitter)},${200 + Math.round(40 * jitter)},${60 + Math.round(40 * jitter)})`; // npm packages
}

export interface RenderOptions {
  title: string;
  subtitle?: string;
  /** Image width, px (default 1200). */
  width?: number;
  /** Height of one frame row, px (default 16). */
  frameHeight?: number;
  /** Boxes narrower than this many px are left out (default 0.3), which keeps the file small. */
  minWidth?: number;
}

/** Draws folded stacks as a flame graph: an SVG document with a tooltip (<title>) on every box. */
export function renderFlameGraph(stacks: Map<string, number>, options: RenderOptions): string {
  const width = options.width ?? 1200;
  const frameHeight = options.frameHeight ?? 16;
  const minWidth = options.minWidth ?? 0.3;
  const fontSize = 11;
  const charWidth = fontSize * 0.59; // Verdana's average advance, as flamegraph.pl assumes
  const pad = 10;
  const top = options.subtitle ? 52 : 36;

  const root: Box = { name: 'all', samples: 0, children: new Map() };
  let depthMax = 0;
  for (const [stack, n] of stacks) {
    root.samples += n;
    let box = root;
    const frames = stack.split(';');
    depthMax = Math.max(depthMax, frames.length);
    for (const f of frames) {
      let child = box.children.get(f);
      if (!child) box.children.set(f, (child = { name: f, samples: 0, children: new Map() }));
      child.samples += n;
      box = child;
    }
  }
  const height = top + (depthMax + 1) * frameHeight + 30;
  const scale = root.samples ? (width - 2 * pad) / root.samples : 0;
  const out: string[] = [];
  const draw = (box: Box, x: number, depth: number) => {
    const w = box.samples * scale;
    if (w < minWidth) return;
    const y = height - 30 - (depth + 1) * frameHeight;
    const share = ((100 * box.samples) / root.samples).toFixed(2);
    const fits = Math.floor((w - 6) / charWidth);
    const label = fits < 3 ? '' : box.name.length <= fits ? box.name : `${box.name.slice(0, fits - 2)}..`;
    out.push(
      `<g><title>${escapeXml(box.name)} (${box.samples} samples, ${share}%)</title>` +
        `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${frameHeight - 1}" fill="${depth === 0 ? 'rgb(200,200,200)' : colour(box.name)}" rx="2"/>` +
        (label ? `<text x="${(x + 3).toFixed(1)}" y="${y + frameHeight - 5}">${escapeXml(label)}</text>` : '') +
        `</g>`,
    );
    let cx = x;
    for (const child of [...box.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      draw(child, cx, depth + 1);
      cx += child.samples * scale;
    }
  };
  draw(root, pad, 0);
  return [
    `<?xml version="1.0" standalone="no"?>`,
    `<svg version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">`,
    `<style>text { font-family: Verdana, sans-serif; font-size: ${fontSize}px; fill: #000; pointer-events: none; } rect:hover { stroke: #000; stroke-width: 0.5; }</style>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#f8f8f0"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" style="font-size:15px">${escapeXml(options.title)}</text>`,
    options.subtitle ? `<text x="${width / 2}" y="40" text-anchor="middle" style="fill:#555">${escapeXml(options.subtitle)}</text>` : '',
    ...out,
    `<text x="${pad}" y="${height - 10}" style="fill:#555">colours: orange framepipe (src/, stages/) · yellow npm packages · aqua Node's own JavaScript · purple WebAssembly · red V8 / native / GC. Width = share of busy samples; hover a box for its name and share.</text>`,
    `</svg>`,
    '',
  ].join('\n');
}
