/** Exit codes shared by the ops CLI and every service's ops entry. */
export const ExitCode = {
  ok: 0,
  /** `verify` found violations. */
  violations: 1,
  /** Bad input, an unreachable dependency, or any failure before or during the work. */
  usage: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Bad input or an unusable environment: one line for the operator, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type FlagKind = 'string' | 'boolean';
export type FlagSpec = Readonly<Record<string, FlagKind>>;

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | true>;
}

/** Arguments longer than this are refused: nothing an operator types is that long. */
const MAX_ARG_CHARS = 1_000;

/**
 * A strict argv parser: `--name value`, `--name=value` and boolean `--name`; `--` ends the
 * flags. Unknown, repeated or valueless flags are usage errors rather than silently ignored,
 * because an ops command run with a typo must not do something else.
 */
export function parseArgs(argv: readonly string[], spec: FlagSpec): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  let flagsEnded = false;
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index]!;
    if (arg.length > MAX_ARG_CHARS) throw new UsageError(`argument too long (${arg.length} characters)`);
    if (flagsEnded || !arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    if (arg === '--') {
      flagsEnded = true;
      continue;
    }
    const equals = arg.indexOf('=');
    const name = arg.slice(2, equals === -1 ? undefined : equals);
    const kind = spec[name];
    if (kind === undefined) throw new UsageError(`unknown option --${name}`);
    if (flags.has(name)) throw new UsageError(`option --${name} given twice`);
    if (kind === 'boolean') {
      if (equals !== -1) throw new UsageError(`option --${name} takes no value`);
      flags.set(name, true);
      continue;
    }
    const value = equals !== -1 ? arg.slice(equals + 1) : argv[++index];
    if (value === undefined || value === '' || (equals === -1 && value.startsWith('--'))) {
      throw new UsageError(`option --${name} needs a value`);
    }
    flags.set(name, value);
  }
  return { positionals, flags };
}

export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const value = args.flags.get(name);
  return typeof value === 'string' ? value : undefined;
}

export function booleanFlag(args: ParsedArgs, name: string): boolean {
  return args.flags.get(name) === true;
}
