import fc from 'fast-check';
import { given } from '@pf/testing';
import { fold } from '@pf/event-store';
import { decodeEscrowEvent, encodeEscrowEvent } from '../infrastructure/escrow-codec.js';
import {
  escrowDecider,
  ledgerInstructionOf,
  releasePayout,
  splitPayout,
  type EscrowCommand,
  type EscrowEvent,
  type EscrowPolicy,
  type OpenEscrow,
} from './escrow.js';

const creator = 'ag_00000000000a';
const worker = 'ag_00000000000b';
const referrer = 'ag_00000000000c';
const outsider = 'ag_00000000000d';
const id = 'esc_0123456789abcdef';
const usd = (amount: number) => BigInt(Math.round(amount * 1_000_000));
const policy: EscrowPolicy = {
  commissionBps: 100,
  minTimeoutMs: 60_000,
  maxTimeoutMs: 720 * 3_600_000,
  minAmountMicros: 100_000n,
};

const open = (change: Partial<OpenEscrow> = {}): OpenEscrow => ({
  kind: 'open',
  escrowId: id,
  creatorId: creator,
  counterpartyId: worker,
  amountMicros: usd(5),
  description: 'Analyze BTC price correlation with gold',
  timeoutMs: 4 * 3_600_000,
  referrerId: null,
  policy,
  ...change,
});

const opened = (change: Partial<Extract<EscrowEvent, { type: 'opened' }>> = {}): EscrowEvent => ({
  type: 'opened',
  escrowId: id,
  creatorId: creator,
  counterpartyId: worker,
  amountMicros: usd(5),
  commissionBps: 100,
  referrerId: null,
  description: 'Analyze BTC price correlation with gold',
  timeoutMs: 4 * 3_600_000,
  ...change,
});
const funded: EscrowEvent = { type: 'funded', escrowId: id, holdId: id, amountMicros: usd(5) };
const completed: EscrowEvent = { type: 'completed', escrowId: id, by: worker, resultSummary: 'corr 0.34' };
const disputed: EscrowEvent = { type: 'disputed', escrowId: id, by: creator, reason: null };
const fullPayout = {
  counterpartyMicros: 4_950_000n,
  commissionMicros: 50_000n,
  houseMicros: 50_000n,
  referrerMicros: 0n,
  referrerId: null,
  creatorMicros: 0n,
};

describe('escrow decider: opening and funding', () => {
  it('opens an escrow, then records the hold as funded', () => {
    given(escrowDecider, []).when(open()).then([opened()]);
    given(escrowDecider, [opened()]).when({ kind: 'record_hold', outcome: 'held' }).then([funded]);
  });

  it('records a refused hold as rejected, with the reason', () => {
    given(escrowDecider, [opened()])
      .when({
        kind: 'record_hold',
        outcome: 'refused',
        code: 'insufficient_balance',
        message: 'no',
        availableMicros: 3n,
      })
      .then([
        { type: 'rejected', escrowId: id, code: 'insufficient_balance', message: 'no', availableMicros: 3n },
      ]);
  });

  it('keeps only the first hold outcome (create and the recovery sweep may both report)', () => {
    given(escrowDecider, [opened(), funded]).when({ kind: 'record_hold', outcome: 'held' }).then([]);
    given(escrowDecider, [opened(), funded])
      .when({
        kind: 'record_hold',
        outcome: 'refused',
        code: 'insufficient_balance',
        message: 'no',
        availableMicros: null,
      })
      .then([]);
  });

  it('is idempotent on the escrow id: the same terms decide nothing, other terms are refused', () => {
    given(escrowDecider, [opened(), funded]).when(open()).then([]);
    given(escrowDecider, [opened(), funded])
      .when(open({ amountMicros: usd(6) }))
      .thenThrows('escrow_id_reused');
  });

  it('fixes the creator referrer at opening, never the creator itself', () => {
    given(escrowDecider, [])
      .when(open({ referrerId: referrer }))
      .then([opened({ referrerId: referrer })]);
    given(escrowDecider, [])
      .when(open({ referrerId: creator }))
      .then([opened({ referrerId: null })]);
  });

  it.each<[Partial<OpenEscrow>, string]>([
    [{ amountMicros: 99_999n }, 'invalid_amount'],
    [{ description: 'ab' }, 'invalid_description'],
    [{ description: 'x'.repeat(1_001) }, 'invalid_description'],
    [{ counterpartyId: 'worker' }, 'invalid_counterparty'],
    [{ counterpartyId: '' }, 'invalid_counterparty'],
    [{ counterpartyId: creator }, 'self_escrow'],
    [{ timeoutMs: 59_999 }, 'invalid_timeout'],
    [{ timeoutMs: 720 * 3_600_000 + 1 }, 'invalid_timeout'],
    [{ timeoutMs: 1.5 }, 'invalid_timeout'],
  ])('refuses to open %j with %s', (change, code) => {
    given(escrowDecider, []).when(open(change)).thenThrows(code);
  });

  it('accepts the edges: $0.10, 3 and 1000 characters, the minimum and maximum timeouts', () => {
    for (const change of [
      { amountMicros: 100_000n },
      { description: 'abc' },
      { description: 'é'.repeat(1_000) },
      { timeoutMs: 60_000 },
      { timeoutMs: 720 * 3_600_000 },
    ]) {
      expect(escrowDecider.decide(open(change), escrowDecider.initialState())).toHaveLength(1);
    }
  });
});

describe('escrow decider: the lifecycle and who may do what', () => {
  it('the counterparty completes a funded escrow, with a result summary', () => {
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'complete', actorId: worker, resultSummary: 'corr 0.34' })
      .then([completed]);
  });

  it('the creator releases from funded or completed: amount - 1% to the counterparty', () => {
    const released: EscrowEvent = {
      type: 'released',
      escrowId: id,
      by: creator,
      trigger: 'creator',
      amountMicros: usd(5),
      payout: fullPayout,
    };
    given(escrowDecider, [opened(), funded, completed])
      .when({ kind: 'release', actorId: creator })
      .then([released]);
    given(escrowDecider, [opened(), funded]).when({ kind: 'release', actorId: creator }).then([released]);
  });

  it('pays 15% of the commission to the creator referrer', () => {
    const [event] = given(escrowDecider, [opened({ referrerId: referrer }), funded])
      .when({ kind: 'release', actorId: creator })
      .events();
    expect(event).toMatchObject({
      payout: {
        counterpartyMicros: 4_950_000n,
        commissionMicros: 50_000n,
        houseMicros: 42_500n,
        referrerMicros: 7_500n,
        referrerId: referrer,
      },
    });
  });

  it('the counterparty declines a funded escrow (a full refund); either party disputes', () => {
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'decline', actorId: worker })
      .then([{ type: 'declined', escrowId: id, by: worker, amountMicros: usd(5) }]);
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'dispute', actorId: worker, reason: 'scope' })
      .then([{ type: 'disputed', escrowId: id, by: worker, reason: 'scope' }]);
    given(escrowDecider, [opened(), funded, completed])
      .when({ kind: 'dispute', actorId: creator, reason: null })
      .then([disputed]);
  });

  it.each<[EscrowCommand]>([
    [{ kind: 'complete', actorId: creator, resultSummary: null }],
    [{ kind: 'complete', actorId: outsider, resultSummary: null }],
    [{ kind: 'release', actorId: worker }],
    [{ kind: 'release', actorId: outsider }],
    [{ kind: 'decline', actorId: creator }],
    [{ kind: 'dispute', actorId: outsider, reason: null }],
  ])('refuses %j with forbidden, whatever the state', (command) => {
    for (const history of [
      [opened(), funded],
      [opened(), funded, completed],
      [opened(), funded, disputed],
      [opened()],
    ]) {
      given(escrowDecider, history).when(command).thenThrows('forbidden');
    }
  });

  it.each<[EscrowEvent[], EscrowCommand]>([
    [[opened(), funded, completed], { kind: 'complete', actorId: worker, resultSummary: null }],
    [[opened(), funded, completed], { kind: 'decline', actorId: worker }],
    [[opened(), funded, disputed], { kind: 'release', actorId: creator }],
    [[opened(), funded, disputed], { kind: 'dispute', actorId: worker, reason: null }],
    [[opened()], { kind: 'complete', actorId: worker, resultSummary: null }],
    [
      [opened(), funded, { type: 'declined', escrowId: id, by: worker, amountMicros: usd(5) }],
      { kind: 'release', actorId: creator },
    ],
    [
      [
        opened(),
        funded,
        {
          type: 'released',
          escrowId: id,
          by: creator,
          trigger: 'creator',
          amountMicros: usd(5),
          payout: fullPayout,
        },
      ],
      { kind: 'release', actorId: creator },
    ],
  ])('refuses a command in the wrong state with invalid_status (%#)', (history, command) => {
    given(escrowDecider, history).when(command).thenThrows('invalid_status');
  });

  it('answers not_found for an escrow that was never opened or whose hold was refused', () => {
    given(escrowDecider, []).when({ kind: 'release', actorId: creator }).thenThrows('not_found');
    const rejected: EscrowEvent = {
      type: 'rejected',
      escrowId: id,
      code: 'insufficient_balance',
      message: 'no',
      availableMicros: 0n,
    };
    given(escrowDecider, [opened(), rejected])
      .when({ kind: 'complete', actorId: worker, resultSummary: null })
      .thenThrows('not_found');
  });

  it('limits result_summary to 10 kB of UTF-8', () => {
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'complete', actorId: worker, resultSummary: 'x'.repeat(10_240) })
      .events();
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'complete', actorId: worker, resultSummary: 'é'.repeat(5_121) })
      .thenThrows('invalid_result_summary');
  });
});

describe('escrow decider: deadlines and disputes', () => {
  it('a passed deadline refunds a funded escrow and releases a completed one', () => {
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'expire' })
      .then([{ type: 'refunded', escrowId: id, trigger: 'timeout', amountMicros: usd(5) }]);
    given(escrowDecider, [opened(), funded, completed])
      .when({ kind: 'expire' })
      .then([
        {
          type: 'released',
          escrowId: id,
          by: null,
          trigger: 'timeout',
          amountMicros: usd(5),
          payout: fullPayout,
        },
      ]);
  });

  it('a passed deadline leaves disputed and settled escrows alone', () => {
    given(escrowDecider, [opened(), funded, disputed]).when({ kind: 'expire' }).then([]);
    given(escrowDecider, [
      opened(),
      funded,
      { type: 'refunded', escrowId: id, trigger: 'timeout', amountMicros: usd(5) },
    ])
      .when({ kind: 'expire' })
      .then([]);
  });

  it('an operator resolves a dispute: release, refund or a split with commission on the released part', () => {
    given(escrowDecider, [opened(), funded, disputed])
      .when({ kind: 'resolve', outcome: 'refund', counterpartyShareBps: null })
      .then([
        {
          type: 'resolved',
          escrowId: id,
          outcome: 'refund',
          counterpartyShareBps: 0,
          amountMicros: usd(5),
          payout: null,
        },
      ]);
    const [split] = given(escrowDecider, [opened({ referrerId: referrer }), funded, disputed])
      .when({ kind: 'resolve', outcome: 'split', counterpartyShareBps: 6_000 })
      .events();
    // $3 released: 1% commission $0.03 (15% = $0.0045 to the referrer); $2 back to the creator.
    expect(split).toMatchObject({
      payout: {
        counterpartyMicros: 2_970_000n,
        commissionMicros: 30_000n,
        houseMicros: 25_500n,
        referrerMicros: 4_500n,
        creatorMicros: 2_000_000n,
      },
    });
    given(escrowDecider, [opened(), funded, disputed])
      .when({ kind: 'resolve', outcome: 'split', counterpartyShareBps: null })
      .thenThrows('invalid_resolution');
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'resolve', outcome: 'release', counterpartyShareBps: null })
      .thenThrows('invalid_status');
  });

  it('says how the casino carries out each settling event', () => {
    expect(ledgerInstructionOf({ type: 'declined', escrowId: id, by: worker, amountMicros: 1n })).toEqual({
      kind: 'void',
    });
    expect(
      ledgerInstructionOf({
        type: 'released',
        escrowId: id,
        by: null,
        trigger: 'timeout',
        amountMicros: usd(5),
        payout: fullPayout,
      }),
    ).toEqual({ kind: 'post', payout: fullPayout });
    expect(ledgerInstructionOf(completed)).toBeNull();
  });
});

describe('escrow payouts: exact conservation (property)', () => {
  const amount = fc.bigInt({ min: 100_000n, max: 1_000_000_000_000n });
  const bps = fc.integer({ min: 0, max: 10_000 });

  it('release and split payouts always sum to the amount, no part negative', () => {
    fc.assert(
      fc.property(amount, bps, bps, fc.boolean(), (amountMicros, commissionBps, shareBps, hasReferrer) => {
        const facts = { amountMicros, commissionBps, referrerId: hasReferrer ? referrer : null };
        for (const payout of [releasePayout(facts), splitPayout(facts, shareBps)]) {
          const parts = [
            payout.counterpartyMicros,
            payout.houseMicros,
            payout.referrerMicros,
            payout.creatorMicros,
          ];
          expect(parts.reduce((sum, part) => sum + part, 0n)).toBe(amountMicros);
          expect(parts.every((part) => part >= 0n)).toBe(true);
          expect(payout.houseMicros + payout.referrerMicros).toBe(payout.commissionMicros);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('events survive the stored encoding unchanged, and a fold of them gives the same state', () => {
    const history: EscrowEvent[] = [
      opened({ referrerId: referrer }),
      funded,
      completed,
      {
        type: 'released',
        escrowId: id,
        by: creator,
        trigger: 'creator',
        amountMicros: usd(5),
        payout: releasePayout({ amountMicros: usd(5), commissionBps: 100, referrerId: referrer }),
      },
    ];
    const roundTripped = history.map((event) => {
      const { type, data } = encodeEscrowEvent(event);
      return decodeEscrowEvent(type, JSON.parse(JSON.stringify(data)) as Record<string, unknown>);
    });
    expect(roundTripped).toEqual(history);
    expect(fold(escrowDecider, roundTripped)).toEqual(fold(escrowDecider, history));
  });
});

describe('escrow decider: market escrows and the market cancel', () => {
  const job = 'job_0123456789abcdef';
  const jobOpened = (race: boolean) => opened({ jobId: job, race });
  const cancelled = (reason: 'job_cancelled' | 'race_lost' | 'award_failed'): EscrowEvent => ({
    type: 'cancelled',
    escrowId: id,
    jobId: job,
    reason,
    amountMicros: usd(5),
  });

  it('records the job (and race) on opening; a direct escrow keeps its old payload', () => {
    given(escrowDecider, [])
      .when(open({ jobId: job, race: true }))
      .then([jobOpened(true)]);
    expect(escrowDecider.decide(open(), escrowDecider.initialState())[0]).not.toHaveProperty('jobId');
  });

  it('the market cancels a funded job escrow: a full refund by a void, no commission', () => {
    const [event] = given(escrowDecider, [jobOpened(false), funded])
      .when({ kind: 'cancel', jobId: job, reason: 'job_cancelled' })
      .then([cancelled('job_cancelled')]);
    expect(ledgerInstructionOf(event!)).toEqual({ kind: 'void' });
  });

  it('cancelling twice decides nothing the second time', () => {
    given(escrowDecider, [jobOpened(false), funded, cancelled('job_cancelled')])
      .when({ kind: 'cancel', jobId: job, reason: 'job_cancelled' })
      .then([]);
  });

  it('refuses a cancel of a direct escrow or of another job escrow', () => {
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'cancel', jobId: job, reason: 'job_cancelled' })
      .thenThrows('forbidden');
    given(escrowDecider, [jobOpened(false), funded])
      .when({ kind: 'cancel', jobId: 'job_ffffffffffffffff', reason: 'job_cancelled' })
      .thenThrows('forbidden');
  });

  it('a worker who completed is paid: no cancel of a completed escrow, except a lost race', () => {
    const completedJob: EscrowEvent = { ...completed };
    given(escrowDecider, [jobOpened(false), funded, completedJob])
      .when({ kind: 'cancel', jobId: job, reason: 'job_cancelled' })
      .thenThrows('invalid_status');
    given(escrowDecider, [jobOpened(false), funded, completedJob])
      .when({ kind: 'cancel', jobId: job, reason: 'race_lost' })
      .thenThrows('invalid_status');
    given(escrowDecider, [jobOpened(true), funded, completedJob])
      .when({ kind: 'cancel', jobId: job, reason: 'job_cancelled' })
      .thenThrows('invalid_status');
    given(escrowDecider, [jobOpened(true), funded, completedJob])
      .when({ kind: 'cancel', jobId: job, reason: 'race_lost' })
      .then([cancelled('race_lost')]);
  });

  it('a released escrow cannot be cancelled', () => {
    const released: EscrowEvent = {
      type: 'released',
      escrowId: id,
      by: creator,
      trigger: 'creator',
      amountMicros: usd(5),
      payout: fullPayout,
    };
    given(escrowDecider, [jobOpened(false), funded, released])
      .when({ kind: 'cancel', jobId: job, reason: 'job_cancelled' })
      .thenThrows('invalid_status');
  });

  it('only the market releases a race escrow; a job escrow outside a race is released by its creator as usual', () => {
    given(escrowDecider, [jobOpened(true), funded, completed])
      .when({ kind: 'release', actorId: creator })
      .thenThrows('forbidden');
    given(escrowDecider, [jobOpened(true), funded, completed])
      .when({ kind: 'release', actorId: creator, jobId: job })
      .events();
    given(escrowDecider, [jobOpened(false), funded, completed])
      .when({ kind: 'release', actorId: creator })
      .events();
  });

  it('the cancel survives the stored encoding', () => {
    for (const event of [jobOpened(true), cancelled('race_lost')]) {
      const { type, data } = encodeEscrowEvent(event);
      expect(decodeEscrowEvent(type, JSON.parse(JSON.stringify(data)) as Record<string, unknown>)).toEqual(
        event,
      );
    }
  });
});
