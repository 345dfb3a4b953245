import { labelPosting, lifetimeChanges } from './entries.js';
import { postingsOf, type LedgerEvent } from './ledger.js';

const creator = 'ag_00000000000a';
const worker = 'ag_00000000000b';
const referrer = 'ag_00000000000c';

/** given an event, when it is labelled, then each posting reads as [account, type, reason, counterparty]. */
function whenLabelled(event: LedgerEvent) {
  return postingsOf(event).map((posting, index) => [
    posting.account,
    ...labelPosting(event, posting.account, index),
  ]);
}

/** The lifetime counters an event moves, summed per account and counter. */
function whenCounted(event: LedgerEvent): Record<string, bigint> {
  const totals: Record<string, bigint> = {};
  for (const { account, counter, amountMicros } of lifetimeChanges(event)) {
    const key = `${account}.${counter}`;
    totals[key] = (totals[key] ?? 0n) + amountMicros;
  }
  return totals;
}

// Given a 50/50 operator split of $10 at 1%: worker $4.95, house $0.05, creator $5 back.
const split: LedgerEvent = {
  type: 'hold_posted',
  holdId: 'esc-1',
  from: creator,
  amountMicros: 10_000_000n,
  splits: [
    { to: worker, amountMicros: 4_950_000n, reason: 'payout' },
    { to: 'house_revenue', amountMicros: 42_500n, reason: 'commission' },
    { to: referrer, amountMicros: 7_500n, reason: 'referral' },
    { to: creator, amountMicros: 5_000_000n, reason: 'refund' },
  ],
};

describe('entry labels', () => {
  it("labels a split's returned share as a refund, the worker's share as a payout", () => {
    expect(whenLabelled(split)).toEqual([
      [creator, 'escrow_settled', 'release', null],
      ['escrow_holding', 'escrow_settled', 'release', null],
      [worker, 'escrow_payout', 'payout', creator],
      ['house_revenue', 'commission', 'commission', creator],
      [referrer, 'referral_commission', 'referral', creator],
      [creator, 'escrow_refund', 'refund', null],
    ]);
  });

  it("labels an evaluator's fee as its own entry and counts it as the evaluator's earnings", () => {
    const event: LedgerEvent = {
      ...split,
      splits: [
        { to: worker, amountMicros: 9_000_000n, reason: 'payout' },
        { to: referrer, amountMicros: 1_000_000n, reason: 'evaluator_fee' },
      ],
    };
    expect(whenLabelled(event)[3]).toEqual([referrer, 'evaluator_fee', 'evaluator_fee', creator]);
    expect(whenCounted(event)).toEqual({
      [`${worker}.earnedMicros`]: 9_000_000n,
      [`${referrer}.earnedMicros`]: 1_000_000n,
    });
  });

  it('labels a split without a reason (older log entries) as a payout', () => {
    const event: LedgerEvent = { ...split, splits: [{ to: worker, amountMicros: 10_000_000n }] };
    expect(whenLabelled(event)[2]).toEqual([worker, 'escrow_payout', 'payout', creator]);
  });

  it("labels a final part's rest given back to the owner as a refund", () => {
    const part: LedgerEvent = {
      type: 'hold_part_posted',
      holdId: 'esc-1',
      partId: 'esc-1:m0',
      from: creator,
      amountMicros: 3_000_000n,
      splits: [{ to: worker, amountMicros: 3_000_000n, reason: 'payout' }],
      releasedMicros: 7_000_000n,
    };
    expect(whenLabelled(part)).toEqual([
      [creator, 'escrow_refund', 'refund', null],
      ['escrow_holding', 'escrow_settled', 'release', null],
      [worker, 'escrow_payout', 'payout', creator],
    ]);
    expect(whenLabelled({ ...part, releasedMicros: 0n })[0]).toEqual([
      creator,
      'escrow_settled',
      'release',
      null,
    ]);
  });

  it('labels deposits, withdrawals, transfers, locks and voids', () => {
    const deposit: LedgerEvent = {
      type: 'funds_transferred',
      transferId: 'd',
      from: 'world',
      to: creator,
      amountMicros: 5n,
      reason: 'deposit',
    };
    expect(whenLabelled(deposit)).toEqual([
      ['world', 'transfer_out', 'deposit', creator],
      [creator, 'deposit', 'deposit', 'world'],
    ]);
    expect(whenLabelled({ ...deposit, from: creator, to: 'world', reason: 'out' })[1]).toEqual([
      'world',
      'transfer_in',
      'out',
      creator,
    ]);
    expect(whenLabelled({ ...deposit, from: creator, to: 'world', reason: 'out' })[0]).toEqual([
      creator,
      'withdrawal',
      'out',
      'world',
    ]);
    expect(
      whenLabelled({
        type: 'hold_placed',
        holdId: 'h',
        from: creator,
        amountMicros: 5n,
        reason: 'escrow',
      })[0],
    ).toEqual([creator, 'escrow_lock', 'escrow', null]);
    expect(whenLabelled({ type: 'hold_voided', holdId: 'h', from: creator, amountMicros: 5n })[0]).toEqual([
      creator,
      'escrow_refund',
      'refund',
      null,
    ]);
  });
});

describe('lifetime counters', () => {
  it("counts a split's returned share as neither earnings nor fees; the worker's payout as earnings", () => {
    expect(whenCounted(split)).toEqual({
      [`${worker}.earnedMicros`]: 4_950_000n,
      [`${creator}.feesMicros`]: 50_000n,
      [`${referrer}.earnedMicros`]: 7_500n,
      [`${referrer}.referralEarnedMicros`]: 7_500n,
    });
  });

  it('counts each part of a partial post like a post of that part', () => {
    const part: LedgerEvent = {
      type: 'hold_part_posted',
      holdId: 'esc-1',
      partId: 'esc-1:m1',
      from: creator,
      amountMicros: 2_000_000n,
      splits: [
        { to: worker, amountMicros: 1_980_000n, reason: 'payout' },
        { to: 'house_revenue', amountMicros: 20_000n, reason: 'commission' },
      ],
      releasedMicros: 1_000_000n,
    };
    expect(whenCounted(part)).toEqual({
      [`${worker}.earnedMicros`]: 1_980_000n,
      [`${creator}.feesMicros`]: 20_000n,
    });
  });

  it('counts deposits, withdrawals and escrowed amounts; a void moves no counter', () => {
    const deposit: LedgerEvent = {
      type: 'funds_transferred',
      transferId: 'd',
      from: 'world',
      to: creator,
      amountMicros: 5n,
      reason: 'deposit',
    };
    expect(whenCounted(deposit)).toEqual({ [`${creator}.depositedMicros`]: 5n });
    expect(whenCounted({ ...deposit, from: creator, to: 'world' })).toEqual({
      [`${creator}.withdrawnMicros`]: 5n,
    });
    expect(whenCounted({ ...deposit, to: worker, from: creator })).toEqual({});
    expect(
      whenCounted({ type: 'hold_placed', holdId: 'h', from: creator, amountMicros: 5n, reason: 'escrow' }),
    ).toEqual({ [`${creator}.escrowedMicros`]: 5n });
    expect(whenCounted({ type: 'hold_voided', holdId: 'h', from: creator, amountMicros: 5n })).toEqual({});
  });
});
