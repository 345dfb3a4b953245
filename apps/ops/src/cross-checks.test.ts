import type { VerifyFact } from '@pf/ops-kit';
import {
  checkAwardsAgainstEscrows,
  checkClaimsAgainstTransfers,
  checkHoldsAgainstEscrows,
  FactSet,
} from './cross-checks.js';

const old = '2025-01-01T00:00:00.000Z';
const nowMs = Date.parse('2025-01-01T01:00:00.000Z');
const options = { nowMs, graceMs: 10_000 };
const fresh = new Date(nowMs - 1_000).toISOString();

function facts(...list: VerifyFact[]): FactSet {
  const set = new FactSet();
  for (const fact of list) set.add(fact);
  return set;
}
const hold = (holdId: string, amountMicros = '5000000', at = old): VerifyFact => ({
  kind: 'live_hold',
  holdId,
  from: 'ag_000000000001',
  amountMicros,
  service: 'escrow',
  at,
});
const escrow = (escrowId: string, status = 'funded', amountMicros = '5000000', at = old): VerifyFact => ({
  kind: 'locked_escrow',
  escrowId,
  holdId: escrowId,
  status,
  amountMicros,
  at,
});
const claim = (claimId: string, status: 'pending' | 'completed' | 'rejected', at = old): VerifyFact => ({
  kind: 'faucet_claim',
  claimId,
  transferId: claimId,
  agentId: 'ag_000000000002',
  amountMicros: '1000000',
  status,
  at,
});
const paid = (
  transferId: string,
  to = 'ag_000000000002',
  amountMicros = '1000000',
  at = old,
): VerifyFact => ({ kind: 'faucet_transfer', transferId, to, amountMicros, at });

describe('cross-service checks', () => {
  it('matches live holds and locked escrows one to one', () => {
    expect(
      checkHoldsAgainstEscrows(
        facts(hold('e1'), escrow('e1'), hold('e2'), escrow('e2', 'disputed')),
        options,
      ),
    ).toEqual([]);
    const violations = checkHoldsAgainstEscrows(
      facts(hold('orphan'), escrow('lost', 'completed'), hold('e3', '1'), escrow('e3')),
      options,
    );
    expect(violations.map((violation) => [violation.check, violation.ids])).toEqual([
      ['hold_without_escrow', { holdId: 'orphan', account: 'ag_000000000001' }],
      ['escrow_without_hold', { escrowId: 'lost', holdId: 'lost' }],
      ['hold_amount_mismatch', { escrowId: 'e3', holdId: 'e3' }],
    ]);
  });

  it('gives sagas in flight and unconfirmed settlements the benefit of the doubt', () => {
    const settling: VerifyFact = {
      kind: 'settling_escrow',
      escrowId: 'e4',
      holdId: 'e4',
      settlement: 'post',
      at: old,
    };
    expect(
      checkHoldsAgainstEscrows(
        facts(hold('new', '1', fresh), escrow('young', 'funded', '1', fresh), hold('e4'), settling),
        options,
      ),
    ).toEqual([]);
    expect(checkHoldsAgainstEscrows(facts(hold('new', '1', fresh)), { nowMs, graceMs: 0 })).toHaveLength(1);
  });

  it('matches faucet claims and treasury transfers one to one', () => {
    expect(
      checkClaimsAgainstTransfers(
        facts(
          claim('c1', 'completed'),
          paid('c1'),
          claim('c2', 'pending'),
          paid('c2'),
          claim('c3', 'rejected'),
        ),
        options,
      ),
    ).toEqual([]);
    const violations = checkClaimsAgainstTransfers(
      facts(
        claim('unpaid', 'completed'),
        claim('refused', 'rejected'),
        paid('refused'),
        paid('stray'),
        claim('wrong', 'completed'),
        paid('wrong', 'ag_000000000003'),
      ),
      options,
    );
    expect(violations.map((violation) => violation.check).sort()).toEqual([
      'claim_transfer_mismatch',
      'claim_without_transfer',
      'transfer_for_rejected_claim',
      'transfer_without_claim',
    ]);
    expect(checkClaimsAgainstTransfers(facts(claim('late', 'completed', fresh)), options)).toEqual([]);
  });
});

describe('market ↔ escrow cross-checks', () => {
  const award = (escrowId: string, jobStatus = 'awarded', bidId = `b-${escrowId}`): VerifyFact => ({
    kind: 'market_award',
    jobId: 'j1',
    escrowId,
    bidId,
    jobStatus,
    at: old,
  });
  const jobEscrow = (escrowId: string, status = 'funded'): VerifyFact => ({
    kind: 'job_escrow',
    escrowId,
    jobId: 'j1',
    status,
    at: old,
  });

  it('passes when every awarded bid has its escrow and no cancelled job keeps a funded one', () => {
    expect(
      checkAwardsAgainstEscrows(
        facts(
          award('e1'),
          jobEscrow('e1', 'completed'),
          award('e2', 'cancelled'),
          jobEscrow('e2', 'refunded'),
          jobEscrow('e3', 'refunded'),
        ),
        options,
      ),
    ).toEqual([]);
  });

  it('names an award without escrow, a bid awarded twice, a funded escrow of a cancelled job and a job escrow without award', () => {
    const violations = checkAwardsAgainstEscrows(
      facts(
        award('lost'),
        award('x1', 'awarded', 'same'),
        jobEscrow('x1'),
        award('x2', 'awarded', 'same'),
        jobEscrow('x2'),
        award('c1', 'cancelled'),
        jobEscrow('c1'),
        jobEscrow('stray', 'completed'),
      ),
      options,
    );
    expect(violations.map((violation) => violation.check).sort()).toEqual([
      'award_without_escrow',
      'bid_awarded_twice',
      'cancelled_job_escrow_funded',
      'job_escrow_without_award',
    ]);
  });
});
