import { escrowFactFields } from './escrow-facts.js';

describe('escrow business facts in the log (issue #21)', () => {
  it('shows amounts in USD and ids, never the parties\u2019 words', () => {
    expect(
      escrowFactFields({
        type: 'opened',
        escrowId: 'esc_0011223344556677',
        creatorId: 'ag_000000000001',
        counterpartyId: 'ag_000000000002',
        amountMicros: 5_000_000n,
        commissionBps: 100,
        referrerId: null,
        description: 'secret plans',
        timeoutMs: 60_000,
      }),
    ).toEqual({
      escrowId: 'esc_0011223344556677',
      creatorId: 'ag_000000000001',
      counterpartyId: 'ag_000000000002',
      amount_usd: '5',
      commissionBps: 100,
      timeoutMs: 60_000,
    });
  });

  it('spells out where a release paid the money', () => {
    const fields = escrowFactFields({
      type: 'released',
      escrowId: 'esc_0011223344556677',
      by: null,
      trigger: 'timeout',
      amountMicros: 5_000_000n,
      payout: {
        counterpartyMicros: 4_950_000n,
        commissionMicros: 50_000n,
        houseMicros: 42_500n,
        referrerMicros: 7_500n,
        referrerId: 'ag_000000000003',
        creatorMicros: 0n,
      },
    });
    expect(fields).toEqual({
      escrowId: 'esc_0011223344556677',
      trigger: 'timeout',
      amount_usd: '5',
      counterparty_usd: '4.95',
      commission_usd: '0.05',
      referrer_usd: '0.0075',
    });
  });

  it('keeps a deliverable out of the log and shows an evaluator fee', () => {
    expect(
      escrowFactFields({
        type: 'completed',
        escrowId: 'esc_0011223344556677',
        by: 'ag_000000000002',
        resultSummary: 'done',
        deliverable: { url: 'https://files.example/x?token=secret', mime: 'text/csv' },
      }),
    ).toEqual({ escrowId: 'esc_0011223344556677', by: 'ag_000000000002' });
    const fields = escrowFactFields({
      type: 'released',
      escrowId: 'esc_0011223344556677',
      by: 'ag_000000000004',
      trigger: 'evaluator',
      amountMicros: 5_000_000n,
      payout: {
        counterpartyMicros: 4_700_000n,
        commissionMicros: 50_000n,
        houseMicros: 50_000n,
        referrerMicros: 0n,
        referrerId: null,
        creatorMicros: 0n,
        evaluatorMicros: 250_000n,
        evaluatorId: 'ag_000000000004',
      },
    });
    expect(fields).toMatchObject({ trigger: 'evaluator', counterparty_usd: '4.7', evaluator_usd: '0.25' });
  });
});
