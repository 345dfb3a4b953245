import { generateKeyPairSync, sign, verify } from 'node:crypto';
import type { EventEnvelope } from '@pf/contracts';
import {
  canonicalJson,
  escrowReceiptFacts,
  faucetReceiptFacts,
  isSettlement,
  paymentReceiptFacts,
} from './receipt.js';

const parties = { creatorId: 'ag_000000000001', counterpartyId: 'ag_000000000002' };

function event(type: string, data: Record<string, unknown>): EventEnvelope {
  return {
    id: '6f1c7a52-4d1e-4a55-9d8e-0c1f3a2b4c5d',
    type,
    stream: 'escrow-esc_0123456789abcdef',
    version: 4,
    position: 1532,
    occurred_at: '2025-01-01T12:00:00.123Z',
    correlation_id: null,
    causation_id: null,
    schema: 1,
    data,
  };
}

describe('receipt facts', () => {
  it('a release states every part of the payout, which adds up to the amount', () => {
    const facts = escrowReceiptFacts(
      event('released', {
        escrowId: 'esc_0123456789abcdef',
        amountMicros: '5000000',
        payout: {
          counterpartyMicros: '4950000',
          commissionMicros: '50000',
          houseMicros: '42500',
          referrerMicros: '7500',
          referrerId: 'ag_000000000009',
          creatorMicros: '0',
        },
      }),
      parties,
    );
    expect(facts).toMatchObject({
      kind: 'escrow_release',
      settlement_id: 'esc_0123456789abcdef',
      payer_id: parties.creatorId,
      payee_id: parties.counterpartyId,
      amount_micros: '5000000',
      paid_to_payee_micros: '4950000',
      commission_micros: '50000',
      referrer_id: 'ag_000000000009',
      event_position: '1532',
      event_version: '4',
    });
  });

  it('a split returns the rest to the payer; a refund pays no commission', () => {
    const split = escrowReceiptFacts(
      event('resolved', {
        escrowId: 'esc_0123456789abcdef',
        outcome: 'split',
        amountMicros: '1000000',
        payout: {
          counterpartyMicros: '495000',
          commissionMicros: '5000',
          houseMicros: '5000',
          referrerMicros: '0',
          referrerId: null,
          creatorMicros: '500000',
        },
      }),
      parties,
    );
    expect(split.kind).toBe('escrow_split');
    const refund = escrowReceiptFacts(
      event('refunded', { escrowId: 'esc_0123456789abcdef', amountMicros: '7' }),
      parties,
    );
    expect(refund).toMatchObject({
      kind: 'escrow_refund',
      returned_to_payer_micros: '7',
      commission_micros: '0',
    });
  });

  it('an evaluator release states the fee; a milestone release names its milestone; mutual cancels refund', () => {
    const facts = escrowReceiptFacts(
      event('milestone_released', {
        escrowId: 'esc_0123456789abcdef',
        milestone: 1,
        amountMicros: '1000000',
        payout: {
          counterpartyMicros: '970000',
          commissionMicros: '10000',
          houseMicros: '10000',
          referrerMicros: '0',
          referrerId: null,
          creatorMicros: '0',
          evaluatorMicros: '20000',
          evaluatorId: 'ag_00000000000e',
        },
      }),
      parties,
    );
    expect(facts).toMatchObject({
      kind: 'escrow_release',
      milestone: '1',
      evaluator_id: 'ag_00000000000e',
      evaluator_micros: '20000',
      paid_to_payee_micros: '970000',
    });
    expect(isSettlement('escrow', { type: 'mutually_cancelled', data: {} })).toBe(true);
    expect(isSettlement('escrow', { type: 'milestones_settled', data: {} })).toBe(false);
    const refund = escrowReceiptFacts(
      event('milestones_refunded', {
        escrowId: 'esc_0123456789abcdef',
        milestones: [2, 3],
        amountMicros: '500',
      }),
      parties,
    );
    expect(refund).toMatchObject({ kind: 'escrow_refund', returned_to_payer_micros: '500', milestone: null });
  });

  it('refuses a payout whose parts do not add up (never signs a false receipt)', () => {
    expect(() =>
      escrowReceiptFacts(
        event('released', {
          escrowId: 'esc_0123456789abcdef',
          amountMicros: '100',
          payout: {
            counterpartyMicros: '99',
            commissionMicros: '2',
            houseMicros: '2',
            referrerMicros: '0',
            referrerId: null,
            creatorMicros: '0',
          },
        }),
        parties,
      ),
    ).toThrow(/payout parts/);
  });

  it('a faucet claim is paid by the treasury; only settling events get receipts', () => {
    const facts = faucetReceiptFacts(
      event('claimed', { claimId: 'c1', agentId: 'ag_000000000002', amountMicros: '1000000' }),
    );
    expect(facts).toMatchObject({
      kind: 'faucet_claim',
      payer_id: 'faucet_treasury',
      paid_to_payee_micros: '1000000',
    });
    expect(
      ['released', 'refunded', 'declined', 'cancelled', 'resolved'].every((type) =>
        isSettlement('escrow', { type, data: {} }),
      ),
    ).toBe(true);
    expect(
      ['opened', 'funded', 'completed', 'disputed', 'rejected'].some((type) =>
        isSettlement('escrow', { type, data: {} }),
      ),
    ).toBe(false);
    expect(isSettlement('faucet', { type: 'claim_requested', data: {} })).toBe(false);
  });

  it('a direct payment is a casino transfer with reason "payment": payer to payee, no commission', () => {
    const transfer = event('funds_transferred', {
      transferId: 'pay_0123456789abcdef',
      from: 'ag_000000000001',
      to: 'ag_000000000002',
      amountMicros: '2500000',
      reason: 'payment',
    });
    expect(isSettlement('casino', transfer)).toBe(true);
    expect(isSettlement('casino', { ...transfer, data: { ...transfer.data, reason: 'deposit' } })).toBe(
      false,
    );
    expect(paymentReceiptFacts(transfer)).toMatchObject({
      kind: 'payment',
      settlement_id: 'pay_0123456789abcdef',
      payer_id: 'ag_000000000001',
      payee_id: 'ag_000000000002',
      paid_to_payee_micros: '2500000',
      commission_micros: '0',
      event_service: 'casino',
    });
  });
});

describe('canonical JSON', () => {
  it('sorts keys at every depth, has no whitespace, and refuses numbers', () => {
    expect(canonicalJson({ b: 'x', a: { d: null, c: 'é"' } })).toBe('{"a":{"c":"é\\"","d":null},"b":"x"}');
    expect(() => canonicalJson({ a: 1 })).toThrow();
  });

  it('a signature over the canonical bytes verifies with the public key and fails on any change', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const canonical = canonicalJson({ amount_micros: '5000000', payee_id: 'ag_000000000002' });
    const signature = sign(null, Buffer.from(canonical), privateKey);
    expect(verify(null, Buffer.from(canonical), publicKey, signature)).toBe(true);
    expect(verify(null, Buffer.from(canonical.replace('5000000', '6000000')), publicKey, signature)).toBe(
      false,
    );
  });
});
