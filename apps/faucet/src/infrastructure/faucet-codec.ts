import { parseMicros } from '@pf/money';
import type { ClaimEvent } from '../domain/claim.js';
import type { TreasuryFunded } from '../domain/treasury.js';

/**
 * Faucet events as stored in the log and published on `faucet.events.<type>`: amounts are
 * integer micro-dollar strings (JSON has no bigint) and come back as bigint when read.
 */
export type FaucetEvent = ClaimEvent | TreasuryFunded;

export const CLAIM_EVENT_TYPES: ReadonlySet<string> = new Set([
  'claim_requested',
  'claimed',
  'claim_transfer_failed',
  'claim_rejected',
]);

export function encodeFaucetEvent(event: FaucetEvent): {
  type: FaucetEvent['type'];
  data: Record<string, unknown>;
} {
  const { type, ...rest } = event;
  const data: Record<string, unknown> = { ...rest };
  if ('amountMicros' in event) data.amountMicros = event.amountMicros.toString();
  return { type, data };
}

export function decodeClaimEvent(type: string, data: Record<string, unknown>): ClaimEvent {
  const base = { claimId: text(data.claimId), agentId: text(data.agentId) };
  switch (type) {
    case 'claim_requested':
      return {
        type,
        ...base,
        amountMicros: parseMicros(data.amountMicros, 'amountMicros'),
        requestedAt: text(data.requestedAt),
      };
    case 'claimed':
      return {
        type,
        ...base,
        amountMicros: parseMicros(data.amountMicros, 'amountMicros'),
        claimedAt: text(data.claimedAt),
        inFirstRequest: data.inFirstRequest === true,
      };
    case 'claim_transfer_failed':
      return { type, ...base, code: text(data.code), failedAt: text(data.failedAt) };
    case 'claim_rejected':
      return {
        type,
        ...base,
        amountMicros: parseMicros(data.amountMicros, 'amountMicros'),
        code: 'faucet_empty',
        rejectedAt: text(data.rejectedAt),
      };
    default:
      throw new Error(`not a claim event: ${type}`);
  }
}

export function decodeTreasuryEvent(type: string, data: Record<string, unknown>): TreasuryFunded {
  if (type !== 'treasury_funded') throw new Error(`not a treasury event: ${type}`);
  const round = data.round;
  if (typeof round !== 'number' || !Number.isSafeInteger(round) || round < 1)
    throw new Error('treasury_funded: round must be a positive integer');
  return {
    type,
    transferId: text(data.transferId),
    round,
    amountMicros: parseMicros(data.amountMicros, 'amountMicros'),
  };
}

function text(value: unknown): string {
  if (typeof value !== 'string')
    throw new Error(`expected a string in a stored faucet event, got ${typeof value}`);
  return value;
}
