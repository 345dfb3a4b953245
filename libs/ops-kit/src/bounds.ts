import { UsageError } from './args.js';

/**
 * How far a replay goes: the head of the log, every event up to a global position, or every
 * event up to the last one recorded at or before a time (turned into a position, see
 * resolveGoalPosition: a position cut is causally closed, a time cut on its own is not).
 */
export type ReplayBound =
  { kind: 'head' } | { kind: 'position'; position: number } | { kind: 'time'; at: Date };

const POSITION_PATTERN = /^(0|[1-9][0-9]{0,15})$/;
/** `2025-01-31T12:00Z`, `2025-01-31T12:00:00.5+02:00`: a time zone is required (no guessing). */
const ISO_TIME_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})$/;
const DURATION_PATTERN = /^([1-9][0-9]{0,8})(ms|s|m|h|d)$/;
const MS_PER_UNIT: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** A look-back longer than the streams keep events (a year) is a typo. */
const MAX_DURATION_MS = 366 * 86_400_000;

export function parsePosition(text: string, flag: string): number {
  if (!POSITION_PATTERN.test(text))
    throw new UsageError(`${flag} must be a whole number >= 0, got ${JSON.stringify(text)}`);
  const position = Number(text);
  if (!Number.isSafeInteger(position)) throw new UsageError(`${flag} is too large: ${text}`);
  return position;
}

export function parseIsoTime(text: string, flag: string): Date {
  const match = ISO_TIME_PATTERN.exec(text);
  if (!match) {
    throw new UsageError(
      `${flag} must be an ISO 8601 time with a zone, e.g. 2025-01-31T12:00:00Z, got ${JSON.stringify(text)}`,
    );
  }
  const [, year, month, day, hour, minute, second = '0'] = match;
  const at = new Date(text);
  // Date.parse rolls 2025-02-30 over to March; refuse fields that do not round-trip.
  const fieldsValid =
    Number(month) >= 1 &&
    Number(month) <= 12 &&
    Number(day) >= 1 &&
    Number(day) <= daysInMonth(Number(year), Number(month)) &&
    Number(hour) <= 23 &&
    Number(minute) <= 59 &&
    Number(second) <= 59;
  if (!fieldsValid || Number.isNaN(at.getTime()))
    throw new UsageError(`${flag} is not a valid time: ${JSON.stringify(text)}`);
  return at;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** `500ms`, `30s`, `10m`, `2h`, `7d`. */
export function parseDurationMs(text: string, flag: string): number {
  const match = DURATION_PATTERN.exec(text);
  if (!match)
    throw new UsageError(`${flag} must be a duration like 30s, 10m, 2h or 7d, got ${JSON.stringify(text)}`);
  const durationMs = Number(match[1]) * MS_PER_UNIT[match[2]!]!;
  if (durationMs > MAX_DURATION_MS) throw new UsageError(`${flag} is longer than a year: ${text}`);
  return durationMs;
}

export function boundFromFlags(toPosition: string | undefined, toTime: string | undefined): ReplayBound {
  if (toPosition !== undefined && toTime !== undefined)
    throw new UsageError('give --to-position or --to-time, not both');
  if (toPosition !== undefined)
    return { kind: 'position', position: parsePosition(toPosition, '--to-position') };
  if (toTime !== undefined) return { kind: 'time', at: parseIsoTime(toTime, '--to-time') };
  return { kind: 'head' };
}

export function describeBound(bound: ReplayBound): string {
  switch (bound.kind) {
    case 'head':
      return 'the head of the log';
    case 'position':
      return `position ${bound.position}`;
    case 'time':
      return bound.at.toISOString();
  }
}
