// npm run bench [-- SCENARIO... [--quick] [--write]]: runs the named scenarios (default: all) and
// prints markdown for docs/benchmarks.md, headed by the host's CPU and core count. With --write,
// each scenario's markdown also replaces the text between its markers in docs/benchmarks.md and
// its chart panel is redrawn in docs/bench/throughput.svg (bench/doc-writer.ts).
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeChart, writeSections } from './doc-writer.js';
import type { ChartPanel, Scenario } from './lib.js';

const dir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(dir, '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const write = args.includes('--write');
const wanted = args.filter((a) => !a.startsWith('--'));

const files = readdirSync(dir).filter((f) => f.endsWith('.bench.ts')).sort();
const scenarios: Scenario[] = [];
for (const file of files) {
  const mod = (await import(pathToFileURL(path.join(dir, file)).href)) as { default: Scenario };
  scenarios.push(mod.default);
}
const chosen = wanted.length ? scenarios.filter((s) => wanted.includes(s.name)) : scenarios;
if (wanted.length && chosen.length !== wanted.length) {
  console.error(`unknown scenario; available: ${scenarios.map((s) => s.name).join(', ')}`);
  process.exit(2);
}

const cpus = os.cpus();
const date = new Date().toISOString().slice(0, 10);
const host = `${cpus[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${date}`;
const command = `npm run bench -- ${[...wanted, ...(quick ? ['--quick'] : []), ...(write ? ['--write'] : [])].join(' ')}`.trim();
console.log(`# framepipe benchmarks\n`);
console.log(`Host: ${host}`);
console.log(`Command: \`${command}\`\n`);
const sections: { name: string; body: string }[] = [];
const panels: Record<string, ChartPanel> = {};
for (const s of chosen) {
  console.error(`running ${s.name}: ${s.description}`);
  const started = performance.now();
  // How busy the machine was: on a shared host it explains a slow run (this bench adds about 2).
  const load = `1-min load average ${os.loadavg()[0]!.toFixed(1)} at the start`;
  const out = await s.run({ quick });
  const markdown = typeof out === 'string' ? out : out.markdown;
  if (typeof out !== 'string' && out.chart) panels[s.name] = out.chart;
  const minutes = ((performance.now() - started) / 60_000).toFixed(1);
  console.error(`${s.name} took ${minutes} min`);
  console.log(`## ${s.name}\n\n${s.description}\n`);
  console.log(markdown);
  console.log('');
  sections.push({ name: s.name, body: `Command: \`${command}\` · Host: ${host} · ${load}${quick ? ' · **--quick** (short run)' : ''}\n\n${s.description}\n\n${markdown}` });
}
if (write) {
  const doc = path.join(root, 'docs/benchmarks.md');
  writeSections(doc, sections);
  console.error(`wrote ${sections.map((s) => s.name).join(', ')} into ${path.relative(process.cwd(), doc)}`);
  if (Object.keys(panels).length) {
    const svg = writeChart(path.join(root, 'docs/bench'), panels, `${date}, ${host.split(',')[0]}, ${os.availableParallelism()} cores`);
    console.error(`drew ${path.relative(process.cwd(), svg)}`);
  }
}
