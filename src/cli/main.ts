import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import type { Config } from '../config/schema.js';
import type { CurveClientOptions } from '../client/client.js';
import { publicKeyFrom, readKeyFile, stageCurve, writeKeyPair } from '../security/keys.js';
import { loadConfig, packageRoot } from '../config/load.js';
import type { ProcessName, StageName } from '../stage/setup.js';
import { fetchStatus, formatProcesses, formatStatus, processStatus } from './status.js';
import { loopbackTransport } from '../transport/ports.js';
import { expandImages } from './files.js';
import { formatSummary, inferFiles, type InferFilesOptions, type InferSummary } from './infer-files.js';
import { launchPipeline, stageArgv, STAGES, type Pipeline, type StageProcess } from './launcher.js';
import { startProgress } from './start-progress.js';
import { supervise, type Supervisor } from './supervisor.js';
import { addConfigOptions, toLoadOptions, type ConfigFlags } from './options.js';
import { openDashboard, type DashboardFlags } from '../dashboard/open.js';
import type { Dashboard } from '../dashboard/server.js';

const program = new Command('framepipe').description('Vision models behind ZeroMQ: ingest → detect → classify → sink');

addConfigOptions(
  program
    .command('start')
    .description('start the whole pipeline (no STAGE), or one replica of STAGE (or the broker), in the foreground; Ctrl-C stops')
    .argument('[stage]', `one of ${STAGES.join(', ')}, broker`)
    .option('-c, --connect <endpoint>', "broker mode: the broker's rendezvous point for STAGE (broker.STAGE), e.g. tcp://10.0.0.5:5561")
    .option('--dashboard', 'with the whole pipeline: also serve the web dashboard (dashboard.host:dashboard.port)'),
).action(async (stage: string | undefined, { dashboard, ...flags }: ConfigFlags & { connect?: string; dashboard?: boolean }) => {
  if (stage === undefined) {
    if (flags.connect) fail('--connect needs a STAGE: it starts one replica that joins a running broker');
    return startPipeline(flags, dashboard === true);
  }
  if (!STAGES.includes(stage as StageName) && stage !== 'broker') fail(`unknown stage '${stage}': expected one of ${STAGES.join(', ')}, broker`);
  if (flags.connect) {
    if (stage === 'broker') fail('the broker binds its endpoints (broker.*); --connect is for the stages that join it');
    flags = { ...flags, set: ['transport.mode=broker', `broker.${stage}=${flags.connect}`, ...(flags.set ?? [])] };
  }
  const child = spawn(process.execPath, stageArgv(stage as ProcessName, flags), {
    stdio: 'inherit',
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code) => process.exit(code ?? 1));
});

program
  .command('infer')
  .description('send images (files or folders) through a running pipeline and print what is in them')
  .argument('<images...>', 'image files or folders')
  .addOption(new Option('-e, --endpoint <endpoint>', 'ingest endpoint').env('FRAMEPIPE_ENDPOINT').default('tcp://127.0.0.1:5555'))
  .option('--json', 'print the raw replies, one JSON object per line')
  .option('-t, --timeout <ms>', 'per-image timeout', (v) => parsePositive(v, '--timeout'), 30_000)
  .option('-w, --inflight <n>', 'requests in flight at once', (v) => parsePositive(v, '--inflight'), 8)
  .option('-a, --annotate <dir>', 'write an annotated JPEG of every image (boxes, labels, text) into DIR')
  .option('-o, --out <file>', 'write the replies as JSON lines to FILE (progress bar and summary on stderr)')
  .option('--shared-memory', "same host as ingest: hand each image over as a file in /dev/shm instead of sending its bytes")
  .addOption(new Option('--server-key <key>', "CURVE: the pipeline's public key, Z85 or @FILE (a .public file from keygen)").env('FRAMEPIPE_SERVER_KEY'))
  .addOption(new Option('--key-file <file>', "CURVE: this client's .secret file from `framepipe keygen`").env('FRAMEPIPE_KEY_FILE'))
  .action(async (images: string[], opts: InferFilesOptions & { endpoint: string; serverKey?: string; keyFile?: string }) => {
    const files = expandOrFail(images);
    const curve = clientCurve(opts.serverKey, opts.keyFile);
    const summary = await inferFiles(opts.endpoint, files, { ...opts, curve });
    if (!opts.json || opts.out) console.error(formatSummary(summary));
    if (summary.errors.TIMEOUT === summary.count) {
      console.error(`framepipe: nothing answered at ${opts.endpoint}; is the pipeline running? (npm start, or --endpoint)`);
      console.error(
        curve
          ? 'framepipe: with CURVE, also check --server-key and that this key is in the pipeline\'s security.allowed_clients'
          : 'framepipe: a pipeline with security.curve on answers only CURVE clients (--server-key, --key-file)',
      );
    }
    process.exitCode = Object.keys(summary.errors).length > 0 ? 1 : 0;
  });

program
  .command('keygen')
  .description('write a CURVE key pair: NAME.public (give to the other side) and NAME.secret (mode 0600, keep here)')
  .option('--out <dir>', 'folder for the key files', '.')
  .option('--name <name>', 'file name without extension', 'framepipe')
  .action((opts: { out: string; name: string }) => {
    try {
      const { publicFile, secretFile, publicKey } = writeKeyPair(opts.out, opts.name);
      console.log(`public key: ${publicKey}\n  ${publicFile}\n  ${secretFile} (secret, mode 0600)`);
    } catch (err) {
      fail((err as Error).message);
    }
  });

addConfigOptions(
  program
    .command('status')
    .description('list the live processes of every stage: from the broker (broker mode, or --connect), else from their metrics ports on this host')
    .option('-c, --connect <endpoint>', "the broker's ingest endpoint (default broker.ingest)")
    .option('--json', 'print the raw status as JSON'),
).action(async (flags: ConfigFlags & { connect?: string; json?: boolean }) => {
  let endpoint = flags.connect;
  let config: Config;
  try {
    config = loadConfig(toLoadOptions(flags));
  } catch (err) {
    fail((err as Error).message);
  }
  if (!endpoint && config.transport.mode !== 'broker') {
    // The same numbers the dashboard shows, read from each process's /stats.json.
    const rows = await processStatus(config.metrics.host, config.metrics.port);
    console.log(flags.json ? JSON.stringify(rows, null, 2) : formatProcesses(rows));
    process.exitCode = rows.length > 0 ? 0 : 1;
    return;
  }
  endpoint ??= config.broker.ingest;
  try {
    const status = await fetchStatus(endpoint, 3000, stageCurve(config.security));
    console.log(flags.json ? JSON.stringify(status, null, 2) : formatStatus(status));
  } catch (err) {
    fail((err as Error).message);
  }
});

addConfigOptions(
  program
    .command('dashboard')
    .description('serve a live web page of every stage (rate, p50/p99, errors) and of the streams clients send, annotated')
    .option('--port <port>', 'port of the page (default dashboard.port, 8080)', (v) => parsePositive(v, '--port'))
    .option('--host <host>', 'interface to bind (default dashboard.host, 127.0.0.1)'),
).action(async (flags: DashboardFlags) => {
  const dashboard = await openDashboard(flags).catch((err: Error) => fail(`dashboard: ${err.message}`));
  console.error(`framepipe: dashboard at ${dashboard.url} (Ctrl-C stops)`);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void dashboard.stop().then(() => process.exit(0)));
});

addConfigOptions(
  program.command('demo').description('start the pipeline, read the bundled sample images, print the results, stop'),
).action(async (flags: ConfigFlags) => {
  const samples = path.join(packageRoot, 'samples');
  const files = expandImages([samples]);
  console.error(`framepipe demo: starting the pipeline (profile ${flags.profile ?? 'ocr'})…`);
  // Its own free ports: the demo must work even while `npm start` holds the default ones.
  const pipeline = await launchOrFail({ ...flags, set: [...(await loopbackTransport()), ...(flags.set ?? [])] }, 'pipe');
  let summary: InferSummary;
  try {
    console.error(`framepipe demo: pipeline ready at ${pipeline.endpoint}; sending ${files.length} sample images\n`);
    const expected = readExpected(samples);
    summary = await inferFiles(pipeline.endpoint, files, { timeout: 60_000, inflight: 4, ...(expected ? { expected } : {}) });
  } finally {
    await pipeline.stop();
  }
  console.error(`\n${formatSummary(summary)}\nframepipe demo: done, pipeline stopped.`);
  process.exitCode = Object.keys(summary.errors).length > 0 ? 1 : 0;
});

async function startPipeline(flags: ConfigFlags, withDashboard = false): Promise<void> {
  // Handlers go in before anything starts: a signal that lands while stages are coming up must
  // still stop them, and a signal with no handler installed would kill us and orphan them.
  let pipeline: Pipeline | undefined;
  let supervisor: Supervisor | undefined;
  let dashboard: Dashboard | undefined;
  let stopping = false;
  const stop = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    supervisor?.stop();
    console.error(`framepipe: ${why}; stopping all stages…`);
    await dashboard?.stop();
    await pipeline?.stop();
    console.error('framepipe: stopped.');
    process.exit(code);
  };
  process.on('SIGINT', () => void stop('SIGINT', 0));
  process.on('SIGTERM', () => void stop('SIGTERM', 0));
  console.error(`framepipe: starting the pipeline (profile ${flags.profile ?? 'ocr'})…`);
  pipeline = await launchOrFail(flags, 'inherit', startProgress(STAGES));
  if (stopping) return void (await stop('stopped while starting', 0));
  const pids = pipeline.procs.map((p) => `${p.stage} ${p.child.pid}`).join(', ');
  console.error(`framepipe: pipeline ready (${pids}).\nframepipe: clients connect to ${pipeline.endpoint} — try: npx framepipe infer samples/\nframepipe: Ctrl-C stops all stages.`);
  if (withDashboard) {
    dashboard = await openDashboard(flags).catch((err: Error) => fail(`dashboard: ${err.message}`));
    console.error(`framepipe: dashboard at ${dashboard.url}`);
  }
  // A stage that exits or is killed is started again with back-off; one that cannot start again stops everything.
  const env = (name: string) => (process.env[name] ? Number(process.env[name]) : undefined);
  supervisor = supervise(
    pipeline,
    { flags, stdio: 'inherit' },
    {
      ...(env('FRAMEPIPE_RESTART_MIN_MS') !== undefined ? { minDelayMs: env('FRAMEPIPE_RESTART_MIN_MS')! } : {}),
      ...(env('FRAMEPIPE_RESTART_ATTEMPTS') !== undefined ? { maxStartFailures: env('FRAMEPIPE_RESTART_ATTEMPTS')! } : {}),
      log: (line) => console.error(`framepipe: ${line}`),
    },
  );
  // A stage that died took its jobs with it; in direct mode only ingest can send them again.
  supervisor.onRestart = (proc) => {
    if (proc.stage === 'ingest' || proc.stage === 'broker') return;
    for (const p of pipeline?.procs ?? []) if (p.stage === 'ingest' && p.child.connected) p.child.send({ type: 'stage-restarted', stage: proc.stage });
  };
  await stop(await supervisor.gaveUp, 1);
}

async function launchOrFail(flags: ConfigFlags, stdio: 'inherit' | 'pipe', onReady?: (proc: StageProcess) => void): Promise<Pipeline> {
  try {
    return await launchPipeline({ flags, stdio, ...(onReady ? { onReady } : {}) });
  } catch (err) {
    fail((err as Error).message);
  }
}

function readExpected(dir: string): Record<string, string[]> | undefined {
  const file = path.join(dir, 'expected.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string[]>) : undefined;
}

function expandOrFail(inputs: string[]): string[] {
  try {
    const files = expandImages(inputs);
    if (files.length === 0) fail(`no images in ${inputs.join(', ')}`);
    return files;
  } catch (err) {
    fail((err as Error).message);
  }
}

/** --server-key and --key-file: both or neither. */
function clientCurve(serverKey: string | undefined, keyFile: string | undefined): CurveClientOptions | undefined {
  if (!serverKey && !keyFile) return undefined;
  if (!serverKey || !keyFile) fail('CURVE needs both --server-key and --key-file (or FRAMEPIPE_SERVER_KEY and FRAMEPIPE_KEY_FILE)');
  try {
    const own = readKeyFile(keyFile);
    if (!own.secretKey || own.publicKeys.length === 0) fail(`${keyFile}: expected a .secret file from framepipe keygen (public_key= and secret_key=)`);
    return { curveServerKey: publicKeyFrom(serverKey, '--server-key'), curvePublicKey: own.publicKeys[0]!, curveSecretKey: own.secretKey };
  } catch (err) {
    fail((err as Error).message);
  }
}

function parsePositive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) fail(`${flag} must be a positive whole number, got '${value}'`);
  return n;
}

function fail(message: string): never {
  console.error(`framepipe: ${message}`);
  process.exit(1);
}

await program.parseAsync(process.argv);
