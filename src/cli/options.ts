import { Command, Option } from 'commander';
import type { LoadOptions } from '../config/load.js';

/** The flags every command that starts stages takes, so `npm start`, `framepipe start` and stage files agree. */
export function addConfigOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('-p, --profile <name>', 'profile: config/NAME.yaml, or a path to a YAML file').env('FRAMEPIPE_PROFILE'))
    .addOption(new Option('-m, --models <dir>', 'model repository: where model files named in the profile are looked up').env('FRAMEPIPE_MODELS'))
    .option('-s, --set <key=value>', 'override one setting, e.g. --set detect.threads=2 (repeatable)', collect, []);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export interface ConfigFlags {
  profile?: string;
  models?: string;
  set?: string[];
}

export function toLoadOptions(flags: ConfigFlags): LoadOptions {
  const out: LoadOptions = { sets: flags.set ?? [] };
  if (flags.profile) out.profile = flags.profile;
  if (flags.models) out.modelsDir = flags.models;
  return out;
}

/** The same flags as an argv tail, to hand to child processes. */
export function toArgv(flags: ConfigFlags): string[] {
  const argv: string[] = [];
  if (flags.profile) argv.push('--profile', flags.profile);
  if (flags.models) argv.push('--models', flags.models);
  for (const s of flags.set ?? []) argv.push('--set', s);
  return argv;
}
