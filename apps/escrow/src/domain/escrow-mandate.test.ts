import { given } from '@pf/testing';
import { decodeEscrowEvent, encodeEscrowEvent } from '../infrastructure/escrow-codec.js';
import { escrowDecider, type EscrowEvent, type OpenEscrow } from './escrow.js';

/** An escrow created with a sub-key (ADR 0019): the key id is recorded, a mandate refusal kept with its facts. */

const creator = 'ag_00000000000a';
const worker = 'ag_00000000000b';
const id = 'esc_0123456789abcdef';
const keyId = 'key_00000000000000aa';

const open: OpenEscrow = {
  kind: 'open',
  escrowId: id,
  creatorId: creator,
  counterpartyId: worker,
  amountMicros: 1_000_000n,
  description: 'mandated work',
  timeoutMs: 3_600_000,
  referrerId: null,
  policy: {
    commissionBps: 100,
    minTimeoutMs: 60_000,
    maxTimeoutMs: 720 * 3_600_000,
    minAmountMicros: 100_000n,
  },
  keyId,
};

const opened: EscrowEvent = {
  type: 'opened',
  escrowId: id,
  creatorId: creator,
  counterpartyId: worker,
  amountMicros: 1_000_000n,
  commissionBps: 100,
  referrerId: null,
  description: 'mandated work',
  timeoutMs: 3_600_000,
  keyId,
};

const refusal = {
  code: 'mandate_exceeded',
  message: 'this payment would exceed the key’s max_per_day_usd (rolling 24 h)',
  availableMicros: null,
  details: { limit: 'per_day', limit_micros: '10000000', remaining_micros: '0' },
};

describe('escrow decider: created with a sub-key', () => {
  it('records the key id on opened, so the recovery sweep can send the hold with it again', () => {
    given(escrowDecider, []).when(open).then([opened]);
    expect(decodeEscrowEvent('opened', encodeEscrowEvent(opened).data)).toEqual(opened);
  });

  it('keeps a mandate refusal with its facts (which limit, what remains) for the creator to read', () => {
    const rejected: EscrowEvent = { type: 'rejected', escrowId: id, ...refusal };
    given(escrowDecider, [opened])
      .when({ kind: 'record_hold', outcome: 'refused', ...refusal })
      .then([rejected]);
    expect(decodeEscrowEvent('rejected', encodeEscrowEvent(rejected).data)).toEqual(rejected);
  });
});
