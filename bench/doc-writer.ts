// `npm run bench -- NAME --write`: each scenario's generated markdown goes into
// docs/benchmarks.md between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`, so the
// hand-written reading of the numbers around the markers stays as it is. A scenario without
// markers yet gets a new `## NAME` section at the end of the file.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChartPanel } from './lib.js';
import { throughputSvg } from './svg-chart.js';

const start = (name: string) => `<!-- bench:${name}:start -->`;
const end = (name: string) => `<!-- bench:${name}:end -->`;

/** Returns `doc` with the text between NAME's markers replaced by `body`. */
export function replaceSection(doc: string, name: string, body: string): string {
  const a = doc.indexOf(start(name));
  const b = doc.indexOf(end(name));
  const block = `${start(name)}\n${body.trim()}\n${end(name)}`;
  if (a === -1 && b === -1) return `${doc.trimEnd()}\n\n## ${name}\n\n${block}\n`;
  if (a === -1 || b === -1 || b < a) throw new Error(`docs/benchmarks.md: the markers of ${name} are unpaired or out of order; fix them by hand`);
  return doc.slice(0, a) + block + doc.slice(b + end(name).length);
}

export function writeSections(file: string, sections: { name: string; body: string }[]): void {
  let doc = readFileSync(file, 'utf8');
  for (const s of sections) doc = replaceSection(doc, s.name, s.body);
  writeFileSync(file, doc);
}

/** Panel order in the figure: the scenarios' order in the issue, then any others by name. */
const ORDER = ['ocr', 'objects', 'transport'];

/**
 * Keeps every scenario's panel data in `dir`/throughput.json (so a run of one scenario redraws
 * its panel and keeps the others) and redraws `dir`/throughput.svg from it.
 */
export function writeChart(dir: string, panels: Record<string, ChartPanel>, caption: string): string {
  mkdirSync(dir, { recursive: true });
  const dataFile = path.join(dir, 'throughput.json');
  const all: Record<string, ChartPanel & { caption?: string }> = existsSync(dataFile) ? JSON.parse(readFileSync(dataFile, 'utf8')) : {};
  for (const [name, p] of Object.entries(panels)) all[name] = { ...p, caption };
  writeFileSync(dataFile, `${JSON.stringify(all, null, 1)}\n`);
  const names = Object.keys(all).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const captions = [...new Set(names.map((n) => all[n]!.caption).filter(Boolean))];
  const svgFile = path.join(dir, 'throughput.svg');
  writeFileSync(svgFile, throughputSvg(names.map((n) => all[n]!), captions.join(' · ')));
  return svgFile;
}

const rank = (name: string) => (ORDER.includes(name) ? ORDER.indexOf(name) : ORDER.length);
