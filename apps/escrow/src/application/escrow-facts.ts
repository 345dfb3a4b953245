import type { Logger } from 'pino';
import { formatUsd } from '@pf/money';
import type { EscrowEvent } from '../domain/escrow.js';

/**
 * Text fields an escrow event may carry: the parties' own words stay out of the log, and so does
 * a deliverable (its URL may carry an access token).
 */
const PRIVATE_FIELDS = new Set(['description', 'resultSummary', 'reason', 'message', 'deliverable']);

/**
 * The log fields of one escrow event: ids, trigger, and every amount both as micros and as USD
 * (`amount_usd=5`), so an operator reading `npm start` sees the money move.
 */
export function escrowFactFields(event: EscrowEvent): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event)) {
    if (key === 'type' || PRIVATE_FIELDS.has(key) || value === null || value === undefined) continue;
    if (key === 'payout' && typeof value === 'object') {
      const payout = value as Record<string, unknown>;
      for (const part of [
        'counterpartyMicros',
        'commissionMicros',
        'referrerMicros',
        'creatorMicros',
        'evaluatorMicros',
      ] as const)
        if (typeof payout[part] === 'bigint' && payout[part] > 0n)
          fields[usdName(part)] = formatUsd(payout[part]);
      continue;
    }
    if (typeof value === 'bigint') fields[usdName(key)] = formatUsd(value);
    else fields[key] = value;
  }
  return fields;
}

/** `amountMicros` → `amount_usd`. */
function usdName(micros: string): string {
  return `${micros.replace(/Micros$/, '').replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)}_usd`;
}

/**
 * One info line per escrow event just committed (`escrow funded`, `escrow released`…): the
 * business facts of the service. Written after the commit, never for a replayed command.
 */
export function logEscrowFacts(logger: Logger, events: readonly EscrowEvent[]): void {
  for (const event of events) logger.info(escrowFactFields(event), `escrow ${event.type}`);
}
