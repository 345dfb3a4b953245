import type { EventEnvelope } from '@pf/contracts';
import { escrowRestEvents, restFields, toRestEvent } from './rest-events.js';

const ESCROW = 'esc_0123456789abcdef';
const CREATOR = 'ag_aaaaaaaaaaaa';
const WORKER = 'ag_bbbbbbbbbbbb';

function envelope(type: string, data: Record<string, unknown>): EventEnvelope {
  return {
    id: '6f1c1e52-8a40-4a3e-9d7e-0d9b5f3f8c11',
    type,
    stream: `escrow-${ESCROW}`,
    version: 4,
    position: 1532,
    occurred_at: '2026-01-01T12:00:00.123Z',
    correlation_id: 'corr',
    causation_id: null,
    schema: 1,
    data,
  };
}

describe('events in the REST shape', () => {
  it('renames camelCase to snake_case and micro-dollar strings to USD numbers, at any depth', () => {
    expect(
      restFields({
        escrowId: ESCROW,
        amountMicros: '4950000',
        payout: { houseMicros: '42500', referrerId: null },
        list: [{ feeMicros: '1' }],
      }),
    ).toEqual({
      escrow_id: ESCROW,
      amount_usd: 4.95,
      payout: { house_usd: 0.0425, referrer_id: null },
      list: [{ fee_usd: 0.000001 }],
    });
  });

  it('keeps the envelope ids and order fields; an unknown type gets the generic renaming', () => {
    const event = toRestEvent(
      envelope('job_posted', { jobId: 'job_1', budgetMicros: '2000000' }),
      escrowRestEvents,
    );
    expect(event).toEqual({
      id: '6f1c1e52-8a40-4a3e-9d7e-0d9b5f3f8c11',
      type: 'job_posted',
      stream: `escrow-${ESCROW}`,
      version: 4,
      position: 1532,
      occurred_at: '2026-01-01T12:00:00.123Z',
      correlation_id: 'corr',
      causation_id: null,
      schema: 1,
      data: { job_id: 'job_1', budget_usd: 2 },
    });
  });

  it('funded: the amount in USD, as the create answer says it', () => {
    expect(
      toRestEvent(
        envelope('funded', { escrowId: ESCROW, holdId: ESCROW, amountMicros: '2000000' }),
        escrowRestEvents,
      ).data,
    ).toEqual({
      escrow_id: ESCROW,
      status: 'funded',
      amount_usd: 2,
    });
  });

  it('released: the payout as POST /escrow/release answers it, without the referrer id', () => {
    const payout = {
      counterpartyMicros: '4950000',
      commissionMicros: '50000',
      houseMicros: '42500',
      referrerMicros: '7500',
      referrerId: 'ag_cccccccccccc',
      creatorMicros: '0',
    };
    const data = toRestEvent(
      envelope('released', {
        escrowId: ESCROW,
        by: CREATOR,
        trigger: 'creator',
        amountMicros: '5000000',
        payout,
      }),
      escrowRestEvents,
    ).data;
    expect(data).toEqual({
      escrow_id: ESCROW,
      status: 'released',
      actor: CREATOR,
      trigger: 'creator',
      amount_usd: 5,
      amount_released: 4.95,
      released_to_counterparty: 4.95,
      commission: 0.05,
      commission_usd: 0.05,
      referral_commission: 0.0075,
      returned_to_creator: 0,
    });
    expect(JSON.stringify(data)).not.toMatch(/Micros|ag_cccccccccccc/);
  });

  it('completed, disputed, declined, refunded and resolved name the escrow, its new status and who acted', () => {
    const rest = (type: string, data: Record<string, unknown>) =>
      toRestEvent(envelope(type, { escrowId: ESCROW, ...data }), escrowRestEvents).data;
    expect(rest('completed', { by: WORKER, resultSummary: '0.34' })).toEqual({
      escrow_id: ESCROW,
      status: 'completed',
      actor: WORKER,
      result_summary: '0.34',
    });
    expect(rest('disputed', { by: CREATOR, reason: null })).toEqual({
      escrow_id: ESCROW,
      status: 'disputed',
      actor: CREATOR,
      reason: null,
    });
    expect(rest('declined', { by: WORKER, amountMicros: '1000000' })).toMatchObject({
      status: 'refunded',
      actor: WORKER,
      refunded_usd: 1,
    });
    expect(rest('refunded', { trigger: 'timeout', amountMicros: '1000000' })).toMatchObject({
      status: 'refunded',
      trigger: 'timeout',
      refunded_usd: 1,
    });
    expect(
      rest('resolved', { outcome: 'refund', counterpartyShareBps: 0, amountMicros: '1000000', payout: null }),
    ).toMatchObject({
      status: 'refunded',
      returned_to_creator: 1,
      released_to_counterparty: 0,
    });
    const split = {
      counterpartyMicros: '594000',
      commissionMicros: '6000',
      houseMicros: '6000',
      referrerMicros: '0',
      referrerId: null,
      creatorMicros: '400000',
    };
    expect(
      rest('resolved', {
        outcome: 'split',
        counterpartyShareBps: 6000,
        amountMicros: '1000000',
        payout: split,
      }),
    ).toMatchObject({
      status: 'split',
      counterparty_share_bps: 6000,
      released_to_counterparty: 0.594,
      returned_to_creator: 0.4,
    });
  });

  it('maps the evaluator events (ADR 0016): the fee on a release, a rejection, a cancel by agreement', () => {
    const EVALUATOR = 'ag_cccccccccccc';
    const released = toRestEvent(
      envelope('released', {
        escrowId: ESCROW,
        by: EVALUATOR,
        trigger: 'evaluator',
        amountMicros: '5000000',
        payout: {
          counterpartyMicros: '4700000',
          commissionMicros: '50000',
          houseMicros: '50000',
          referrerMicros: '0',
          referrerId: null,
          creatorMicros: '0',
          evaluatorMicros: '250000',
          evaluatorId: EVALUATOR,
        },
      }),
      escrowRestEvents,
    );
    expect(released.data).toMatchObject({
      status: 'released',
      actor: EVALUATOR,
      trigger: 'evaluator',
      released_to_counterparty: 4.7,
      evaluator_id: EVALUATOR,
      evaluator_fee_usd: 0.25,
    });
    expect(
      toRestEvent(
        envelope('evaluation_rejected', { escrowId: ESCROW, by: EVALUATOR, reason: 'blurry' }),
        escrowRestEvents,
      ).data,
    ).toEqual({ escrow_id: ESCROW, status: 'funded', actor: EVALUATOR, rejection_reason: 'blurry' });
    expect(
      toRestEvent(
        envelope('mutually_cancelled', { escrowId: ESCROW, by: WORKER, amountMicros: '5000000' }),
        escrowRestEvents,
      ).data,
    ).toEqual({
      escrow_id: ESCROW,
      status: 'refunded',
      actor: WORKER,
      trigger: 'cancelled_by_agreement',
      amount_usd: 5,
      refunded_usd: 5,
    });
    expect(
      toRestEvent(
        envelope('completed', {
          escrowId: ESCROW,
          by: WORKER,
          resultSummary: null,
          deliverable: { url: 'https://files.example/x', mime: 'text/csv' },
        }),
        escrowRestEvents,
      ).data,
    ).toMatchObject({ deliverable: { url: 'https://files.example/x', mime: 'text/csv' } });
  });
});
