import fc from 'fast-check';
import { given } from '@pf/testing';
import { fold } from '@pf/event-store';
import { decodeEscrowEvent, encodeEscrowEvent } from '../infrastructure/escrow-codec.js';
import {
  escrowDecider,
  ledgerInstructionOf,
  payoutSplits,
  releasePayout,
  type EscrowEvent,
  type EscrowPolicy,
  type OpenEscrow,
} from './escrow.js';

/** docs/adr/0016: evaluators and their fee, deliverables, evaluator rejections, cancels by agreement. */

const creator = 'ag_00000000000a';
const worker = 'ag_00000000000b';
const referrer = 'ag_00000000000c';
const evaluator = 'ag_00000000000e';
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
  amountMicros: usd(10),
  description: 'Label 500 images',
  timeoutMs: 4 * 3_600_000,
  referrerId: null,
  policy,
  evaluatorId: evaluator,
  evaluatorFeeBps: 500,
  ...change,
});

const opened = (change: Partial<Extract<EscrowEvent, { type: 'opened' }>> = {}): EscrowEvent => ({
  type: 'opened',
  escrowId: id,
  creatorId: creator,
  counterpartyId: worker,
  amountMicros: usd(10),
  commissionBps: 100,
  referrerId: null,
  description: 'Label 500 images',
  timeoutMs: 4 * 3_600_000,
  evaluatorId: evaluator,
  evaluatorFeeBps: 500,
  ...change,
});
const funded: EscrowEvent = { type: 'funded', escrowId: id, holdId: id, amountMicros: usd(10) };
const digest = 'ab'.repeat(32);
const completed: EscrowEvent = {
  type: 'completed',
  escrowId: id,
  by: worker,
  resultSummary: 'done',
  deliverable: { url: 'https://files.example/labels.json', sha256: digest, mime: 'application/json' },
};
const rejected: EscrowEvent = { type: 'evaluation_rejected', escrowId: id, by: evaluator, reason: 'blurry' };

describe('escrow decider: opening with an evaluator', () => {
  it('records the evaluator and its fee; an escrow without one keeps the old payload', () => {
    given(escrowDecider, []).when(open()).then([opened()]);
    const plain = opened();
    delete (plain as { evaluatorId?: string }).evaluatorId;
    delete (plain as { evaluatorFeeBps?: number }).evaluatorFeeBps;
    given(escrowDecider, [])
      .when(open({ evaluatorId: null, evaluatorFeeBps: undefined }))
      .then([plain]);
  });

  it('is idempotent on the id only with the same evaluator and fee', () => {
    given(escrowDecider, [opened(), funded]).when(open()).then([]);
    given(escrowDecider, [opened(), funded])
      .when(open({ evaluatorFeeBps: 400 }))
      .thenThrows('escrow_id_reused');
    given(escrowDecider, [opened(), funded])
      .when(open({ evaluatorId: outsider }))
      .thenThrows('escrow_id_reused');
  });

  it.each<[Partial<OpenEscrow>, string]>([
    [{ evaluatorId: 'judge' }, 'invalid_evaluator'],
    [{ evaluatorId: creator }, 'invalid_evaluator'],
    [{ evaluatorId: worker }, 'invalid_evaluator'],
    [{ evaluatorFeeBps: 1_001 }, 'invalid_evaluator_fee'],
    [{ evaluatorFeeBps: -1 }, 'invalid_evaluator_fee'],
    [{ evaluatorFeeBps: 2.5 }, 'invalid_evaluator_fee'],
    [{ evaluatorId: null, evaluatorFeeBps: 100 }, 'invalid_evaluator_fee'],
  ])('refuses to open %j with %s', (change, code) => {
    given(escrowDecider, []).when(open(change)).thenThrows(code);
  });

  it('accepts the fee edges 0 and 1000, and no fee at all', () => {
    for (const change of [{ evaluatorFeeBps: 0 }, { evaluatorFeeBps: 1_000 }, { evaluatorFeeBps: undefined }])
      expect(escrowDecider.decide(open(change), escrowDecider.initialState())).toHaveLength(1);
  });
});

describe('escrow decider: only the evaluator releases or rejects', () => {
  it('the evaluator releases: the fee is taken from the worker, commission unchanged, conserved', () => {
    given(escrowDecider, [opened(), funded, completed])
      .when({ kind: 'release', actorId: evaluator })
      .then([
        {
          type: 'released',
          escrowId: id,
          by: evaluator,
          trigger: 'evaluator',
          amountMicros: usd(10),
          payout: {
            counterpartyMicros: usd(9.4),
            commissionMicros: usd(0.1),
            houseMicros: usd(0.1),
            referrerMicros: 0n,
            referrerId: null,
            creatorMicros: 0n,
            evaluatorMicros: usd(0.5),
            evaluatorId: evaluator,
          },
        },
      ]);
  });

  it.each([creator, worker, outsider])('refuses a release or reject by %s with not_evaluator', (actor) => {
    given(escrowDecider, [opened(), funded, completed])
      .when({ kind: 'release', actorId: actor })
      .thenThrows('not_evaluator');
    given(escrowDecider, [opened(), funded, completed])
      .when({ kind: 'reject', actorId: actor, reason: 'no', refund: false })
      .thenThrows('not_evaluator');
    given(escrowDecider, [opened(), funded, completed])
      .when({ kind: 'reject', actorId: actor, reason: 'no', refund: true })
      .thenThrows('not_evaluator');
  });

  it('nobody may reject an escrow without an evaluator, and its creator still releases', () => {
    const plain = opened({ evaluatorId: undefined, evaluatorFeeBps: undefined });
    given(escrowDecider, [plain, funded, completed])
      .when({ kind: 'reject', actorId: creator, reason: 'no', refund: false })
      .thenThrows('not_evaluator');
    const [released] = escrowDecider.decide(
      { kind: 'release', actorId: creator },
      fold(escrowDecider, [plain, funded, completed]),
    );
    expect(released).toMatchObject({ type: 'released', trigger: 'creator' });
    expect((released as { payout: object }).payout).not.toHaveProperty('evaluatorId');
  });

  it('the creator can still dispute an escrow with an evaluator', () => {
    given(escrowDecider, [opened(), funded, completed])
      .when({ kind: 'dispute', actorId: creator, reason: 'late' })
      .then([{ type: 'disputed', escrowId: id, by: creator, reason: 'late' }]);
  });

  it('a rejection sends the work back: funded again, the worker completes again, the evaluator releases', () => {
    given(escrowDecider, [opened(), funded, completed])
      .when({ kind: 'reject', actorId: evaluator, reason: '  blurry  ', refund: false })
      .then([rejected]);
    const state = fold(escrowDecider, [opened(), funded, completed, rejected]);
    expect(state).toMatchObject({ status: 'funded', rejectReason: 'blurry' });
    given(escrowDecider, [opened(), funded, completed, rejected])
      .when({ kind: 'complete', actorId: worker, resultSummary: 'sharper', deliverable: null })
      .then([{ type: 'completed', escrowId: id, by: worker, resultSummary: 'sharper' }]);
    given(escrowDecider, [opened(), funded, completed, rejected, completed])
      .when({ kind: 'release', actorId: evaluator })
      .then([expect.objectContaining({ type: 'released', trigger: 'evaluator' }) as EscrowEvent]);
  });

  it('a plain rejection needs delivered work; a reason of 1..2000 characters', () => {
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'reject', actorId: evaluator, reason: 'no', refund: false })
      .thenThrows('invalid_status');
    given(escrowDecider, [opened(), funded, completed])
      .when({ kind: 'reject', actorId: evaluator, reason: '   ', refund: false })
      .thenThrows('invalid_reject_reason');
    given(escrowDecider, [opened(), funded, completed])
      .when({ kind: 'reject', actorId: evaluator, reason: 'x'.repeat(2_001), refund: false })
      .thenThrows('invalid_reject_reason');
  });

  it('a rejection with refund gives everything back by a void (no commission, no fee)', () => {
    for (const history of [
      [opened(), funded],
      [opened(), funded, completed],
    ]) {
      given(escrowDecider, history)
        .when({ kind: 'reject', actorId: evaluator, reason: 'fake data', refund: true })
        .then([
          {
            type: 'evaluator_refunded',
            escrowId: id,
            by: evaluator,
            reason: 'fake data',
            amountMicros: usd(10),
          },
        ]);
    }
    const refunded: EscrowEvent = {
      type: 'evaluator_refunded',
      escrowId: id,
      by: evaluator,
      reason: 'x',
      amountMicros: usd(10),
    };
    expect(ledgerInstructionOf(refunded)).toEqual({ kind: 'void' });
    expect(ledgerInstructionOf(rejected)).toBeNull();
    given(escrowDecider, [opened(), funded, refunded])
      .when({ kind: 'release', actorId: evaluator })
      .thenThrows('invalid_status');
  });

  it('a deadline releases a completed escrow without the fee (the evaluator did not act)', () => {
    const [released] = escrowDecider.decide(
      { kind: 'expire' },
      fold(escrowDecider, [opened(), funded, completed]),
    );
    expect(released).toMatchObject({
      type: 'released',
      trigger: 'timeout',
      payout: { counterpartyMicros: usd(9.9), evaluatorMicros: 0n, evaluatorId: evaluator },
    });
    // Sent back and not completed again by the deadline: refunded.
    given(escrowDecider, [opened(), funded, completed, rejected])
      .when({ kind: 'expire' })
      .then([{ type: 'refunded', escrowId: id, trigger: 'timeout', amountMicros: usd(10) }]);
  });

  it('the fee is one more split of the same post, to the evaluator', () => {
    const payout = releasePayout(
      {
        amountMicros: usd(10),
        commissionBps: 100,
        referrerId: referrer,
        evaluatorId: evaluator,
        evaluatorFeeBps: 500,
      },
      { evaluatorFee: true },
    );
    expect(payoutSplits({ creatorId: creator, counterpartyId: worker }, payout)).toEqual([
      { to: worker, amountMicros: usd(9.4), reason: 'payout' },
      { to: 'house_revenue', amountMicros: usd(0.085), reason: 'commission' },
      { to: referrer, amountMicros: usd(0.015), reason: 'referral' },
      { to: evaluator, amountMicros: usd(0.5), reason: 'evaluator_fee' },
    ]);
  });
});

describe('escrow decider: deliverables', () => {
  it('records a normalized deliverable with the completion', () => {
    given(escrowDecider, [opened(), funded])
      .when({
        kind: 'complete',
        actorId: worker,
        resultSummary: 'done',
        deliverable: {
          url: 'https://files.example/labels.json',
          sha256: digest.toUpperCase(),
          mime: 'application/json',
        },
      })
      .then([completed]);
    expect(fold(escrowDecider, [opened(), funded, completed])).toMatchObject({
      deliverable: { sha256: digest },
    });
  });

  it.each([
    [{}],
    [{ url: 'ftp://files.example/x' }],
    [{ url: 'javascript:alert(1)' }],
    [{ url: `https://x.example/${'a'.repeat(2_048)}` }],
    [{ url: 'https://x.example/ a' }],
    [{ sha256: 'ab'.repeat(31) }],
    [{ sha256: 'zz'.repeat(32) }],
    [{ mime: 'json' }],
    [{ mime: `text/${'a'.repeat(256)}` }],
    [{ size: 3 }],
    [['https://x.example']],
    ['https://x.example'],
  ])('refuses the deliverable %j', (deliverable) => {
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'complete', actorId: worker, resultSummary: null, deliverable: deliverable as never })
      .thenThrows('invalid_deliverable');
  });
});

describe('escrow decider: cancel by agreement', () => {
  const requested: EscrowEvent = { type: 'cancel_requested', escrowId: id, by: creator };
  const consented: EscrowEvent = { type: 'cancel_consented', escrowId: id, by: worker };
  const plain = opened({ evaluatorId: undefined, evaluatorFeeBps: undefined });

  it('creator first, then the counterparty consents: a full refund by a void', () => {
    given(escrowDecider, [plain, funded])
      .when({ kind: 'request_cancel', actorId: creator })
      .then([requested]);
    given(escrowDecider, [plain, funded, requested])
      .when({ kind: 'consent_cancel', actorId: worker })
      .then([{ type: 'mutually_cancelled', escrowId: id, by: worker, amountMicros: usd(10) }]);
    expect(
      ledgerInstructionOf({ type: 'mutually_cancelled', escrowId: id, by: worker, amountMicros: usd(10) }),
    ).toEqual({ kind: 'void' });
  });

  it('counterparty first, then the creator cancels', () => {
    given(escrowDecider, [plain, funded]).when({ kind: 'consent_cancel', actorId: worker }).then([consented]);
    given(escrowDecider, [plain, funded, consented])
      .when({ kind: 'request_cancel', actorId: creator })
      .then([{ type: 'mutually_cancelled', escrowId: id, by: creator, amountMicros: usd(10) }]);
  });

  it('one half alone moves no money; asking twice records nothing new', () => {
    expect(ledgerInstructionOf(requested)).toBeNull();
    expect(fold(escrowDecider, [plain, funded, requested])).toMatchObject({ status: 'funded' });
    given(escrowDecider, [plain, funded, requested])
      .when({ kind: 'request_cancel', actorId: creator })
      .then([]);
    given(escrowDecider, [plain, funded, consented])
      .when({ kind: 'consent_cancel', actorId: worker })
      .then([]);
  });

  it('each half belongs to one party', () => {
    for (const actor of [worker, evaluator, outsider])
      given(escrowDecider, [opened(), funded])
        .when({ kind: 'request_cancel', actorId: actor })
        .thenThrows('forbidden');
    for (const actor of [creator, evaluator, outsider])
      given(escrowDecider, [opened(), funded])
        .when({ kind: 'consent_cancel', actorId: actor })
        .thenThrows('forbidden');
  });

  it('works from completed and disputed; not once settled; not for a market job escrow', () => {
    const disputed: EscrowEvent = { type: 'disputed', escrowId: id, by: creator, reason: null };
    given(escrowDecider, [plain, funded, completed, disputed, consented])
      .when({ kind: 'request_cancel', actorId: creator })
      .then([{ type: 'mutually_cancelled', escrowId: id, by: creator, amountMicros: usd(10) }]);
    const cancelled: EscrowEvent = {
      type: 'mutually_cancelled',
      escrowId: id,
      by: creator,
      amountMicros: usd(10),
    };
    given(escrowDecider, [plain, funded, consented, cancelled])
      .when({ kind: 'request_cancel', actorId: creator })
      .thenThrows('invalid_status');
    given(escrowDecider, [
      opened({
        evaluatorId: undefined,
        evaluatorFeeBps: undefined,
        jobId: 'job_0123456789abcdef',
        race: false,
      }),
      funded,
    ])
      .when({ kind: 'request_cancel', actorId: creator })
      .thenThrows('forbidden');
  });
});

describe('escrow evaluator payouts: exact conservation (property)', () => {
  it('release payouts with an evaluator fee always sum to the amount, no part negative', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 100_000n, max: 1_000_000_000_000n }),
        fc.integer({ min: 0, max: 9_000 }),
        fc.integer({ min: 0, max: 1_000 }),
        fc.boolean(),
        fc.boolean(),
        (amountMicros, commissionBps, feeBps, hasReferrer, byEvaluator) => {
          const payout = releasePayout(
            {
              amountMicros,
              commissionBps,
              referrerId: hasReferrer ? referrer : null,
              evaluatorId: evaluator,
              evaluatorFeeBps: feeBps,
            },
            { evaluatorFee: byEvaluator },
          );
          const splits = payoutSplits({ creatorId: creator, counterpartyId: worker }, payout);
          expect(splits.reduce((sum, split) => sum + split.amountMicros, 0n)).toBe(amountMicros);
          expect(splits.every((split) => split.amountMicros > 0n)).toBe(true);
          expect(payout.evaluatorMicros).toBe(byEvaluator ? (amountMicros * BigInt(feeBps)) / 10_000n : 0n);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('new events survive the stored encoding, and a fold of them gives the same state', () => {
    const released: EscrowEvent = {
      type: 'released',
      escrowId: id,
      by: evaluator,
      trigger: 'evaluator',
      amountMicros: usd(10),
      payout: releasePayout(
        {
          amountMicros: usd(10),
          commissionBps: 100,
          referrerId: null,
          evaluatorId: evaluator,
          evaluatorFeeBps: 500,
        },
        { evaluatorFee: true },
      ),
    };
    for (const history of [
      [opened(), funded, completed, rejected, completed, released],
      [
        opened(),
        funded,
        { type: 'cancel_consented', escrowId: id, by: worker },
        { type: 'mutually_cancelled', escrowId: id, by: creator, amountMicros: usd(10) },
      ],
      [
        opened(),
        funded,
        { type: 'evaluator_refunded', escrowId: id, by: evaluator, reason: 'r', amountMicros: usd(10) },
      ],
    ] as EscrowEvent[][]) {
      const roundTripped = history.map((event) => {
        const { type, data } = encodeEscrowEvent(event);
        return decodeEscrowEvent(type, JSON.parse(JSON.stringify(data)) as Record<string, unknown>);
      });
      expect(roundTripped).toEqual(history);
      expect(fold(escrowDecider, roundTripped)).toEqual(fold(escrowDecider, history));
    }
  });

  it('schema 1 payloads (no evaluator fields) still decode and fold', () => {
    const v1Opened = {
      escrowId: id,
      creatorId: creator,
      counterpartyId: worker,
      amountMicros: '5000000',
      commissionBps: 100,
      referrerId: null,
      description: 'old',
      timeoutMs: 3_600_000,
    };
    const v1Released = {
      escrowId: id,
      by: creator,
      trigger: 'creator',
      amountMicros: '5000000',
      payout: {
        counterpartyMicros: '4950000',
        commissionMicros: '50000',
        houseMicros: '50000',
        referrerMicros: '0',
        referrerId: null,
        creatorMicros: '0',
      },
    };
    const events = [
      decodeEscrowEvent('opened', v1Opened),
      decodeEscrowEvent('funded', { escrowId: id, holdId: id, amountMicros: '5000000' }),
      decodeEscrowEvent('completed', { escrowId: id, by: worker, resultSummary: null }),
      decodeEscrowEvent('released', v1Released),
    ];
    expect(fold(escrowDecider, events)).toMatchObject({ status: 'released', deliverable: null });
    expect(encodeEscrowEvent(events[3]!).data).toEqual(v1Released);
    expect(encodeEscrowEvent(events[0]!).data).toEqual(v1Opened);
  });
});
