import {
  booleanFlag,
  ExitCode,
  formatCount,
  parseArgs,
  parseReplayOptions,
  REPLAY_FLAGS,
  stringFlag,
  UsageError,
  type ReplayResult,
} from '@pf/ops-kit';
import { formatMegabytes, formatSeconds, note, progressRenderer, say } from '../output.js';
import { hasServiceEntry, runServiceEntry, selectServices, serviceEntryPath } from '../service-entries.js';

const FLAGS = { ...REPLAY_FLAGS, json: 'boolean' } as const;

export const replayUsage = `ops replay <casino|faucet|escrow|all> [--to-position N | --to-time ISO] [--into NAME] [--swap] [--batch-size N] [--json]
  Rebuilds the service's projections from its event log into fresh tables (<table>_shadow, or
  <table>_<NAME>). --to-position/--to-time replay a point in time ("every balance at 12:00").
  --swap then replaces the live tables atomically (the previous ones are kept as <table>_old).`;

/**
 * `ops replay`: checks every option first (nothing runs on bad input), then runs each service's
 * ops entry in turn. Stops at the first failure, so a dead database changes nothing.
 */
export async function replayCommand(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (args.positionals.length !== 1) throw new UsageError(`usage: ${replayUsage.split('\n')[0]}`);
  const { selection, services } = selectServices(args.positionals[0]);
  const options = parseReplayOptions(args);
  if (selection === 'all' && options.bound.kind === 'position') {
    throw new UsageError(
      "--to-position is a position in one service's log: name the service (or use --to-time for all)",
    );
  }
  const json = booleanFlag(args, 'json');
  const forwarded = forwardedArgs(args, selection === 'all');
  const renderer = progressRenderer();
  for (const service of services) {
    if (!hasServiceEntry(service)) {
      if (selection !== 'all')
        throw new UsageError(`${service} has no ops entry in this build (${serviceEntryPath(service)})`);
      note(`${service}: skipped (no ops entry in this build)`);
      continue;
    }
    const outcome = await runServiceEntry(service, ['replay', ...forwarded], renderer, () => undefined);
    if (outcome.exitCode !== ExitCode.ok || !outcome.result) {
      note(`ops: ${service}: ${outcome.error ?? `replay failed (exit code ${outcome.exitCode})`}`);
      return ExitCode.usage;
    }
    if (json) say(JSON.stringify(outcome.result));
    else say(describeResult(outcome.result));
  }
  return ExitCode.ok;
}

function forwardedArgs(args: ReturnType<typeof parseArgs>, ifDeployed: boolean): string[] {
  const forwarded: string[] = [];
  for (const name of ['to-position', 'to-time', 'into', 'batch-size']) {
    const value = stringFlag(args, name);
    if (value !== undefined) forwarded.push(`--${name}`, value);
  }
  if (booleanFlag(args, 'swap')) forwarded.push('--swap');
  if (ifDeployed) forwarded.push('--if-deployed');
  return forwarded;
}

function describeResult(
  result: Extract<Awaited<ReturnType<typeof runServiceEntry>>['result'], object>,
): string {
  if ('skipped' in result) return `${result.service}: skipped: ${result.skipped}`;
  const replay = result as ReplayResult;
  const where = replay.swapped
    ? `and swapped them in as ${replay.tables.join(', ')} (the previous tables are kept as *_old)`
    : `into ${replay.tables.join(', ')}`;
  return `${replay.service}: replayed ${formatCount(replay.events)} events up to position ${replay.goalPosition} ${where} in ${formatSeconds(replay.durationMs)} (${formatCount(replay.eventsPerSecond)} events/s, peak RSS ${formatMegabytes(replay.maxRssBytes)})`;
}
