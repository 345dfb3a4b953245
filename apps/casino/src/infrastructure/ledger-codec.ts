import { SPLIT_REASONS, type SplitReason } from '@pf/contracts';
import { parseMicros } from '@pf/money';
import type { LedgerEvent, Split } from '../domain/ledger.js';

/**
 * Ledger events as stored in the log and published: amounts become integer micro-dollar
 * strings (JSON has no bigint), and come back as bigint when the log is read.
 */
export type StoredLedgerEvent = { type: LedgerEvent['type']; data: Record<string, unknown> };

export const LEDGER_EVENT_TYPES: ReadonlySet<string> = new Set([
  'funds_transferred',
  'hold_placed',
  'hold_posted',
  'hold_voided',
  'hold_rejected',
  'hold_part_posted',
]);

export function encodeLedgerEvent(event: LedgerEvent): StoredLedgerEvent {
  const { type, ...rest } = event;
  const data: Record<string, unknown> = { ...rest, amountMicros: event.amountMicros.toString() };
  if (event.type === 'hold_rejected') data.availableMicros = event.availableMicros.toString();
  if (event.type === 'hold_posted') data.splits = event.splits.map(encodeSplit);
  if (event.type === 'hold_part_posted') {
    data.splits = event.splits.map(encodeSplit);
    data.releasedMicros = event.releasedMicros.toString();
  }
  return { type, data };
}

export function decodeLedgerEvent(type: string, data: Record<string, unknown>): LedgerEvent {
  const amountMicros = parseMicros(data.amountMicros, 'amountMicros');
  switch (type) {
    case 'funds_transferred':
      return {
        type,
        transferId: text(data.transferId),
        from: text(data.from),
        to: text(data.to),
        amountMicros,
        reason: text(data.reason),
      };
    case 'hold_placed':
      return {
        type,
        holdId: text(data.holdId),
        from: text(data.from),
        amountMicros,
        reason: text(data.reason),
      };
    case 'hold_posted':
      return {
        type,
        holdId: text(data.holdId),
        from: text(data.from),
        amountMicros,
        splits: (data.splits as Array<Record<string, unknown>>).map(decodeSplit),
      };
    case 'hold_voided':
      return { type, holdId: text(data.holdId), from: text(data.from), amountMicros };
    case 'hold_part_posted':
      return {
        type,
        holdId: text(data.holdId),
        partId: text(data.partId),
        from: text(data.from),
        amountMicros,
        splits: (data.splits as Array<Record<string, unknown>>).map(decodeSplit),
        releasedMicros: parseMicros(data.releasedMicros, 'releasedMicros'),
      };
    case 'hold_rejected':
      return {
        type,
        holdId: text(data.holdId),
        from: text(data.from),
        amountMicros,
        availableMicros: parseMicros(data.availableMicros, 'availableMicros'),
      };
    default:
      throw new Error(`not a ledger event: ${type}`);
  }
}

function encodeSplit(split: Split): Record<string, unknown> {
  return {
    to: split.to,
    amountMicros: split.amountMicros.toString(),
    ...(split.reason ? { reason: split.reason } : {}),
  };
}

function decodeSplit(split: Record<string, unknown>): Split {
  const decoded: Split = {
    to: text(split.to),
    amountMicros: parseMicros(split.amountMicros, 'amountMicros'),
  };
  if (split.reason !== undefined) decoded.reason = splitReason(split.reason);
  return decoded;
}

/** Only the closed set was ever posted (the decider refuses others); anything else is a corrupt log. */
function splitReason(value: unknown): SplitReason {
  if (!SPLIT_REASONS.includes(value as SplitReason))
    throw new Error(`unknown split reason ${String(value)} in a stored ledger event`);
  return value as SplitReason;
}

function text(value: unknown): string {
  if (typeof value !== 'string')
    throw new Error(`expected a string in a stored ledger event, got ${typeof value}`);
  return value;
}
