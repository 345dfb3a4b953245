import fc from 'fast-check';
import { given } from '@pf/testing';
import { fold } from '@pf/event-store';
import { decodeEscrowEvent, encodeEscrowEvent } from '../infrastructure/escrow-codec.js';
import {
  escrowDecider,
  type EscrowEvent,
  type EscrowPolicy,
  type OpenEscrow,
  type Payout,
} from './escrow.js';
import { milestonePartOf } from './milestones.js';
import { milestoneViews } from '../infrastructure/milestone-row.js';
import { rowAfter } from '../infrastructure/escrow-row.js';

const creator = 'ag_00000000000a';
const worker = 'ag_00000000000b';
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
const terms = [
  { description: 'design', amountMicros: usd(3) },
  { description: 'build', amountMicros: usd(5) },
  { description: 'ship', amountMicros: usd(2) },
];

const open = (change: Partial<OpenEscrow> = {}): OpenEscrow => ({
  kind: 'open',
  escrowId: id,
  creatorId: creator,
  counterpartyId: worker,
  amountMicros: usd(10),
  description: 'A site in three milestones',
  timeoutMs: 4 * 3_600_000,
  referrerId: null,
  policy,
  milestones: terms,
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
  description: 'A site in three milestones',
  timeoutMs: 4 * 3_600_000,
  milestones: terms,
  ...change,
});
const funded: EscrowEvent = { type: 'funded', escrowId: id, holdId: id, amountMicros: usd(10) };
const done = (milestone: number): EscrowEvent => ({
  type: 'milestone_completed',
  escrowId: id,
  milestone,
  by: worker,
  resultSummary: `part ${milestone}`,
});
/** 1% commission on the part, all to the house (no referrer). */
const payoutOf = (amount: number): Payout => ({
  counterpartyMicros: usd(amount * 0.99),
  commissionMicros: usd(amount * 0.01),
  houseMicros: usd(amount * 0.01),
  referrerMicros: 0n,
  referrerId: null,
  creatorMicros: 0n,
});
const released = (
  milestone: number,
  amount: number,
  trigger: 'creator' | 'timeout' = 'creator',
): EscrowEvent => ({
  type: 'milestone_released',
  escrowId: id,
  milestone,
  by: trigger === 'timeout' ? null : creator,
  trigger,
  amountMicros: usd(amount),
  payout: payoutOf(amount),
});

describe('escrow milestones: opening', () => {
  it('opens with milestones that sum to the amount', () => {
    given(escrowDecider, []).when(open()).then([opened()]);
  });

  it.each([
    ['a sum below the amount', { milestones: terms.slice(0, 2) }],
    ['no milestone', { milestones: [] }],
    [
      '21 milestones',
      {
        amountMicros: usd(21),
        milestones: Array.from({ length: 21 }, () => ({ description: 'x', amountMicros: usd(1) })),
      },
    ],
    ['a zero amount', { milestones: [...terms.slice(0, 2), { description: 'ship', amountMicros: 0n }] }],
    ['an empty description', { milestones: [{ ...terms[0]!, description: '' }, ...terms.slice(1)] }],
    [
      'a 501-character description',
      { milestones: [{ ...terms[0]!, description: 'x'.repeat(501) }, ...terms.slice(1)] },
    ],
  ] as Array<[string, Partial<OpenEscrow>]>)('refuses %s with invalid_milestones', (_what, change) => {
    given(escrowDecider, []).when(open(change)).thenThrows('invalid_milestones');
  });

  it('a retried create with other milestones is refused; the same decides nothing', () => {
    given(escrowDecider, [opened()]).when(open()).then([]);
    given(escrowDecider, [opened()])
      .when(open({ milestones: [terms[1]!, terms[0]!, terms[2]!] }))
      .thenThrows('escrow_id_reused');
  });
});

describe('escrow milestones: complete and release one by one', () => {
  it('the worker completes a milestone; the escrow stays funded', () => {
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'complete', actorId: worker, resultSummary: 'part 0', milestone: 0 })
      .then([done(0)]);
    const state = fold(escrowDecider, [opened(), funded, done(0)]);
    expect(state).toMatchObject({
      status: 'funded',
      milestones: [{ status: 'completed' }, { status: 'pending' }, { status: 'pending' }],
    });
  });

  it('a deliverable handed over with a milestone is kept in its event and its entry', () => {
    const deliverable = {
      url: 'https://files.example/design.pdf',
      sha256: 'ab'.repeat(32),
      mime: 'application/pdf',
    };
    const withDeliverable: EscrowEvent = { ...done(0), deliverable } as EscrowEvent;
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'complete', actorId: worker, resultSummary: 'part 0', milestone: 0, deliverable })
      .then([withDeliverable]);
    // It survives the log (schema 2, as every milestone event) and reaches the read model.
    expect(decodeEscrowEvent('milestone_completed', encodeEscrowEvent(withDeliverable).data)).toEqual(
      withDeliverable,
    );
    const at = new Date('2026-12-05T10:00:00.000Z');
    // The read model's milestones after the escrow opened, was funded and then `event`, at `at`.
    const storedAfter = (event: EscrowEvent) =>
      rowAfter(
        undefined,
        [opened(), funded, event].map((each, index) => ({
          event: each,
          recordedAt: at,
          streamVersion: index + 1,
        })),
      )!.milestones!;
    const views = milestoneViews(storedAfter(withDeliverable));
    expect(views.map((view) => view.deliverable)).toEqual([deliverable, null, null]);
    // Without one, nothing is invented.
    expect(milestoneViews(storedAfter(done(0)))[0]).toMatchObject({
      status: 'completed',
      deliverable: null,
    });
  });

  it('a bad deliverable with a milestone is refused and nothing is decided', () => {
    given(escrowDecider, [opened(), funded])
      .when({
        kind: 'complete',
        actorId: worker,
        resultSummary: 'part 0',
        milestone: 0,
        deliverable: { url: 'ftp://files.example/design.pdf' },
      })
      .thenThrows('invalid_deliverable');
  });

  it('the creator releases a milestone: commission on that part only', () => {
    given(escrowDecider, [opened(), funded, done(0)])
      .when({ kind: 'release', actorId: creator, milestone: 0 })
      .then([released(0, 3)]);
  });

  it('the last release settles the escrow with the total payout', () => {
    given(escrowDecider, [opened(), funded, released(0, 3), released(2, 2)])
      .when({ kind: 'release', actorId: creator, milestone: 1 })
      .then([
        released(1, 5),
        {
          type: 'milestones_settled',
          escrowId: id,
          outcome: 'released',
          amountMicros: usd(10),
          payout: payoutOf(10),
        },
      ]);
  });

  it.each([
    [
      'a milestone out of range',
      { kind: 'complete', actorId: worker, resultSummary: null, milestone: 3 },
      'invalid_milestone',
    ],
    ['no milestone', { kind: 'complete', actorId: worker, resultSummary: null }, 'invalid_milestone'],
    ['no milestone on release', { kind: 'release', actorId: creator }, 'invalid_milestone'],
    [
      'the creator completing',
      { kind: 'complete', actorId: creator, resultSummary: null, milestone: 0 },
      'forbidden',
    ],
    ['the worker releasing', { kind: 'release', actorId: worker, milestone: 0 }, 'forbidden'],
    ['an outsider releasing', { kind: 'release', actorId: outsider, milestone: 0 }, 'forbidden'],
  ] as const)('refuses %s', (_what, command, code) => {
    given(escrowDecider, [opened(), funded]).when(command).thenThrows(code);
  });

  it('refuses completing a completed or released milestone, and releasing a released one', () => {
    given(escrowDecider, [opened(), funded, done(0)])
      .when({ kind: 'complete', actorId: worker, resultSummary: null, milestone: 0 })
      .thenThrows('invalid_status');
    given(escrowDecider, [opened(), funded, released(0, 3)])
      .when({ kind: 'release', actorId: creator, milestone: 0 })
      .thenThrows('invalid_status');
  });

  it('a milestone on an escrow without milestones is refused', () => {
    given(escrowDecider, [opened({ milestones: undefined }), funded])
      .when({ kind: 'release', actorId: creator, milestone: 0 })
      .thenThrows('invalid_milestone');
  });

  it('once a milestone is paid, decline and dispute of the whole escrow are refused', () => {
    given(escrowDecider, [opened(), funded, released(0, 3)])
      .when({ kind: 'decline', actorId: worker })
      .thenThrows('invalid_status');
    given(escrowDecider, [opened(), funded, released(0, 3)])
      .when({ kind: 'dispute', actorId: creator, reason: null })
      .thenThrows('invalid_status');
  });

  it("once a milestone is paid, the evaluator's refund and a cancel by agreement are refused too", () => {
    const withEvaluator = opened({ evaluatorId: evaluator, evaluatorFeeBps: 500 });
    const paid: EscrowEvent = {
      ...(released(0, 3) as Extract<EscrowEvent, { type: 'milestone_released' }>),
      by: evaluator,
      trigger: 'evaluator',
    };
    given(escrowDecider, [withEvaluator, funded, paid])
      .when({ kind: 'reject', actorId: evaluator, reason: 'no', refund: true })
      .thenThrows('invalid_status');
    given(escrowDecider, [
      withEvaluator,
      funded,
      paid,
      { type: 'cancel_requested', escrowId: id, by: creator },
    ])
      .when({ kind: 'consent_cancel', actorId: worker })
      .thenThrows('invalid_status');
    given(escrowDecider, [withEvaluator, funded])
      .when({ kind: 'reject', actorId: evaluator, reason: 'no', refund: true })
      .then([
        { type: 'evaluator_refunded', escrowId: id, by: evaluator, reason: 'no', amountMicros: usd(10) },
      ]);
  });

  it('with an evaluator, only the evaluator releases a milestone, and its fee is taken on that part', () => {
    const withEvaluator = opened({ evaluatorId: evaluator, evaluatorFeeBps: 500 });
    given(escrowDecider, [withEvaluator, funded])
      .when({ kind: 'release', actorId: creator, milestone: 0 })
      .thenThrows('not_evaluator');
    const [event] = given(escrowDecider, [withEvaluator, funded])
      .when({ kind: 'release', actorId: evaluator, milestone: 0 })
      .events();
    expect(event).toMatchObject({
      type: 'milestone_released',
      trigger: 'evaluator',
      amountMicros: usd(3),
      payout: {
        counterpartyMicros: usd(3 * 0.94),
        houseMicros: usd(0.03),
        evaluatorMicros: usd(0.15),
        evaluatorId: evaluator,
      },
    });
  });
});

describe('escrow milestones: the deadline', () => {
  it('auto-releases completed milestones and refunds the unfinished rest, in one settlement', () => {
    const events = given(escrowDecider, [opened(), funded, released(0, 3), done(1)])
      .when({ kind: 'expire' })
      .then([
        released(1, 5, 'timeout'),
        {
          type: 'milestones_refunded',
          escrowId: id,
          milestones: [2],
          trigger: 'timeout',
          amountMicros: usd(2),
        },
        {
          type: 'milestones_settled',
          escrowId: id,
          outcome: 'released',
          amountMicros: usd(10),
          payout: { ...payoutOf(8), creatorMicros: usd(2) },
        },
      ]);
    expect(milestonePartOf(id, events)).toEqual({
      partId: `${id}:deadline`,
      payouts: [payoutOf(5)],
      refundMicros: usd(2),
    });
  });

  it('refunds everything when nothing was completed', () => {
    given(escrowDecider, [opened(), funded])
      .when({ kind: 'expire' })
      .then([
        {
          type: 'milestones_refunded',
          escrowId: id,
          milestones: [0, 1, 2],
          trigger: 'timeout',
          amountMicros: usd(10),
        },
        {
          type: 'milestones_settled',
          escrowId: id,
          outcome: 'refunded',
          amountMicros: usd(10),
          payout: null,
        },
      ]);
  });

  it("a creator's release is its milestone's own part", () => {
    expect(milestonePartOf(id, [released(1, 5)])).toEqual({
      partId: `${id}:m1`,
      payouts: [payoutOf(5)],
      refundMicros: 0n,
    });
    expect(milestonePartOf(id, [done(1)])).toBeNull();
  });
});

describe('escrow milestones: invariants', () => {
  it('every path conserves the amount: payouts + refunds = amount, events survive the codec', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('complete' as const), milestone: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ kind: fc.constant('release' as const), milestone: fc.integer({ min: 0, max: 3 }) }),
      fc.constant({ kind: 'expire' as const, milestone: 0 }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 5_000_000 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 1_000 }),
        fc.array(step, { maxLength: 12 }),
        (amounts, commissionBps, steps) => {
          const milestones = amounts.map((amount, index) => ({
            description: `m${index}`,
            amountMicros: BigInt(amount),
          }));
          const amountMicros = milestones.reduce((sum, m) => sum + m.amountMicros, 0n);
          let history: EscrowEvent[] = [
            ...escrowDecider.decide(
              open({ amountMicros, milestones, policy: { ...policy, commissionBps, minAmountMicros: 1n } }),
              escrowDecider.initialState(),
            ),
            { type: 'funded', escrowId: id, holdId: id, amountMicros },
          ];
          let paidMicros = 0n;
          for (const { kind, milestone } of steps) {
            const command =
              kind === 'complete'
                ? { kind, actorId: worker, resultSummary: null, milestone }
                : kind === 'release'
                  ? { kind, actorId: creator, milestone }
                  : { kind };
            let events: EscrowEvent[];
            try {
              events = escrowDecider.decide(command, fold(escrowDecider, history));
            } catch (error) {
              expect((error as { code?: string }).code).toEqual(expect.any(String));
              continue;
            }
            for (const event of events) {
              expect(decodeEscrowEvent(event.type, encodeEscrowEvent(event).data)).toEqual(event);
              if (event.type === 'milestone_released') paidMicros += event.amountMicros;
              if (event.type === 'milestones_refunded') paidMicros += event.amountMicros;
            }
            history = [...history, ...events];
          }
          const state = fold(escrowDecider, history);
          if (state.status === 'released' || state.status === 'refunded')
            expect(paidMicros).toBe(amountMicros);
          else expect(paidMicros < amountMicros).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
