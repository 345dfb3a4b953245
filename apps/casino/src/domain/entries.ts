import { isAgentAccount, SystemAccount } from './accounts.js';
import type { LedgerEvent, Split } from './ledger.js';

/**
 * How a ledger event reads in an agent's history and lifetime figures: the label of each
 * posting and which lifetime counters it moves. Pure, so the rules are tested on their own and
 * the live projection, the bulk replay and `ops verify` cannot disagree on them.
 */

export type EntryType =
  | 'deposit'
  | 'withdrawal'
  | 'transfer_in'
  | 'transfer_out'
  | 'escrow_lock'
  | 'escrow_refund'
  | 'escrow_settled'
  | 'escrow_payout'
  | 'commission'
  | 'referral_commission'
  | 'evaluator_fee';

/** [type, reason, counterparty] of one entry: a tuple, built for every posting on the hot path. */
export type EntryLabel = readonly [type: EntryType, reason: string, counterparty: string | null];

const SETTLED: EntryLabel = ['escrow_settled', 'release', null];
const REFUNDED: EntryLabel = ['escrow_refund', 'refund', null];

/** The label of posting `index` of `event` (the order of `postingsOf`). */
export function labelPosting(event: LedgerEvent, account: string, index: number): EntryLabel {
  switch (event.type) {
    case 'funds_transferred': {
      if (account === event.to)
        return [event.from === SystemAccount.world ? 'deposit' : 'transfer_in', event.reason, event.from];
      return [event.to === SystemAccount.world ? 'withdrawal' : 'transfer_out', event.reason, event.to];
    }
    case 'hold_placed':
      return ['escrow_lock', event.reason, null];
    case 'hold_voided':
      return REFUNDED;
    case 'hold_rejected':
      throw new Error('a refused hold moves no money and has no postings');
    case 'hold_posted':
      // Postings: [owner (held released), escrow_holding, ...splits in order].
      return index < 2 ? SETTLED : labelSplit(event.splits[index - 2]!, event.from);
    case 'hold_part_posted':
      // The owner's posting gives back the rest of a final part, if any.
      if (index === 0) return event.releasedMicros > 0n ? REFUNDED : SETTLED;
      return index === 1 ? SETTLED : labelSplit(event.splits[index - 2]!, event.from);
  }
}

/** A post's destination: the creator's returned share (`refund`) is a refund, never a payout. */
function labelSplit(split: Split, from: string): EntryLabel {
  switch (split.reason) {
    case 'referral':
      return ['referral_commission', 'referral', from];
    case 'commission':
      return ['commission', 'commission', from];
    case 'refund':
      return REFUNDED;
    case 'evaluator_fee':
      return ['evaluator_fee', 'evaluator_fee', from];
    case 'payout':
    case undefined:
      return ['escrow_payout', split.reason ?? 'payout', from];
  }
}

export type LifetimeCounter =
  | 'depositedMicros'
  | 'withdrawnMicros'
  | 'escrowedMicros'
  | 'earnedMicros'
  | 'feesMicros'
  | 'referralEarnedMicros';

export interface LifetimeChange {
  account: string;
  counter: LifetimeCounter;
  amountMicros: bigint;
}

/**
 * The lifetime counters an event moves. Earned is what an agent was paid for work or referrals
 * (payouts and referral commission to agents); fees are the commission taken from the payer; a
 * refund, whole or a split's returned share, is neither.
 */
export function lifetimeChanges(event: LedgerEvent): LifetimeChange[] {
  switch (event.type) {
    case 'funds_transferred': {
      const changes: LifetimeChange[] = [];
      if (event.from === SystemAccount.world)
        changes.push({ account: event.to, counter: 'depositedMicros', amountMicros: event.amountMicros });
      if (event.to === SystemAccount.world)
        changes.push({ account: event.from, counter: 'withdrawnMicros', amountMicros: event.amountMicros });
      return changes;
    }
    case 'hold_placed':
      return [{ account: event.from, counter: 'escrowedMicros', amountMicros: event.amountMicros }];
    case 'hold_posted':
    case 'hold_part_posted':
      return event.splits.flatMap((split) => splitChanges(split, event.from));
    case 'hold_voided':
    case 'hold_rejected':
      return [];
  }
}

function splitChanges(split: Split, from: string): LifetimeChange[] {
  const amountMicros = split.amountMicros;
  switch (split.reason) {
    case 'commission':
      return [{ account: from, counter: 'feesMicros', amountMicros }];
    case 'referral':
      return [
        { account: from, counter: 'feesMicros', amountMicros },
        ...(isAgentAccount(split.to)
          ? [
              { account: split.to, counter: 'earnedMicros' as const, amountMicros },
              { account: split.to, counter: 'referralEarnedMicros' as const, amountMicros },
            ]
          : []),
      ];
    case 'refund':
      return [];
    // The evaluator's fee is its earnings; it comes out of the worker's part, not on top (ADR 0016).
    case 'evaluator_fee':
    case 'payout':
    case undefined:
      return isAgentAccount(split.to) ? [{ account: split.to, counter: 'earnedMicros', amountMicros }] : [];
  }
}
