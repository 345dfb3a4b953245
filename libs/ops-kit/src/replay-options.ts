import { booleanFlag, stringFlag, UsageError, type FlagSpec, type ParsedArgs } from './args.js';
import { boundFromFlags, parsePosition, type ReplayBound } from './bounds.js';
import { MAX_REPLAY_BATCH_SIZE } from './replay.js';

/** Options of `replay`, shared by the `ops` CLI (which checks them before starting anything) and the service entries. */
export const REPLAY_FLAGS: FlagSpec = {
  'to-position': 'string',
  'to-time': 'string',
  into: 'string',
  swap: 'boolean',
  'batch-size': 'string',
};

export interface ReplayOptions {
  bound: ReplayBound;
  /** Table suffix of the target, `_shadow` unless `--into NAME`. */
  suffix: string;
  swap: boolean;
  batchSize: number | undefined;
}

/** Words `--into` may not take: the live tables, the swap's previous tables and verify's scratch tables. */
const RESERVED_TARGETS: ReadonlySet<string> = new Set(['live', 'old', 'verify']);
const INTO_PATTERN = /^[a-z][a-z0-9]{0,19}$/;

export function parseReplayOptions(args: ParsedArgs): ReplayOptions {
  const bound = boundFromFlags(stringFlag(args, 'to-position'), stringFlag(args, 'to-time'));
  const into = stringFlag(args, 'into') ?? 'shadow';
  if (!INTO_PATTERN.test(into) || RESERVED_TARGETS.has(into)) {
    throw new UsageError(
      `--into must be a lowercase word other than live, old and verify (tables become <table>_<word>), got ${JSON.stringify(into)}`,
    );
  }
  const swap = booleanFlag(args, 'swap');
  if (swap && bound.kind !== 'head')
    throw new UsageError(
      '--swap replaces the live projection and needs the whole log: drop --to-position/--to-time',
    );
  return { bound, suffix: `_${into}`, swap, batchSize: parseBatchSize(stringFlag(args, 'batch-size')) };
}

export function parseBatchSize(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const batchSize = parsePosition(text, '--batch-size');
  if (batchSize < 1 || batchSize > MAX_REPLAY_BATCH_SIZE)
    throw new UsageError(`--batch-size must be from 1 to ${MAX_REPLAY_BATCH_SIZE}, got ${text}`);
  return batchSize;
}
