// npm run bench [-- SCENARIO... [--quick]]: runs the named scenarios (default: all) and prints
// markdown for docs/benchmarks.md, headed by the host's CPU and core count.
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Scenario } from './lib.js';

const dir = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
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
console.log(`# framepipe benchmarks\n`);
console.log(`Host: ${cpus[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
console.log(`Command: \`npm run bench -- ${[...wanted, ...(quick ? ['--quick'] : [])].join(' ')}\`\n`);
for (const s of chosen) {
  console.error(`running ${s.name}: ${s.description}`);
  console.log(`## ${s.name}\n\n${s.description}\n`);
  console.log(await s.run({ quick }));
  console.log('');
}
