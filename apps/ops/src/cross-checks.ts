import type { VerifyFact, Violation } from '@pf/ops-kit';

type FactOf<K extends VerifyFact['kind']> = Extract<VerifyFact, { kind: K }>;

/** Facts gathered from the services' logs, keyed for the joins below. */
export class FactSet {
  readonly liveHolds = new Map<string, FactOf<'live_hold'>>();
  readonly lockedEscrows: Array<FactOf<'locked_escrow'>> = [];
  readonly settlingHolds = new Set<string>();
  readonly faucetTransfers = new Map<string, FactOf<'faucet_transfer'>>();
  readonly faucetClaims: Array<FactOf<'faucet_claim'>> = [];
  readonly jobEscrows = new Map<string, FactOf<'job_escrow'>>();
  readonly marketAwards: Array<FactOf<'market_award'>> = [];

  add(fact: VerifyFact): void {
    switch (fact.kind) {
      case 'live_hold':
        this.liveHolds.set(fact.holdId, fact);
        return;
      case 'locked_escrow':
        this.lockedEscrows.push(fact);
        return;
      case 'settling_escrow':
        this.settlingHolds.add(fact.holdId);
        return;
      case 'faucet_transfer':
        this.faucetTransfers.set(fact.transferId, fact);
        return;
      case 'faucet_claim':
        this.faucetClaims.push(fact);
        return;
      case 'job_escrow':
        this.jobEscrows.set(fact.escrowId, fact);
        return;
      case 'market_award':
        this.marketAwards.push(fact);
        return;
    }
  }
}

export interface CrossCheckOptions {
  nowMs: number;
  /** Facts that changed this recently are skipped: a saga in flight is half done on purpose. */
  graceMs: number;
}

function settledBefore(options: CrossCheckOptions): (at: string) => boolean {
  return (at) => options.nowMs - Date.parse(at) >= options.graceMs;
}

/**
 * Every live hold belongs to an escrow whose money must be locked (funded, completed or
 * disputed) or whose settlement casino has not confirmed yet; every locked escrow has exactly
 * one live hold (the one it names), of its amount.
 */
export function checkHoldsAgainstEscrows(facts: FactSet, options: CrossCheckOptions): Violation[] {
  const settled = settledBefore(options);
  const violations: Violation[] = [];
  const escrowsByHold = new Map<string, Array<FactOf<'locked_escrow'>>>();
  for (const escrow of facts.lockedEscrows) {
    const list = escrowsByHold.get(escrow.holdId) ?? [];
    list.push(escrow);
    escrowsByHold.set(escrow.holdId, list);
  }
  for (const hold of facts.liveHolds.values()) {
    if (escrowsByHold.has(hold.holdId) || facts.settlingHolds.has(hold.holdId) || !settled(hold.at)) continue;
    violations.push({
      check: 'hold_without_escrow',
      ids: { holdId: hold.holdId, account: hold.from },
      detail: `live hold of ${hold.amountMicros} micros (placed for ${hold.service}) belongs to no funded, completed or disputed escrow`,
    });
  }
  for (const [holdId, escrows] of escrowsByHold) {
    if (escrows.length > 1) {
      violations.push({
        check: 'hold_shared_by_escrows',
        ids: { holdId, escrowIds: escrows.map((escrow) => escrow.escrowId).join(',') },
        detail: `${escrows.length} locked escrows name the same hold`,
      });
    }
    const hold = facts.liveHolds.get(holdId);
    for (const escrow of escrows) {
      if (!hold) {
        if (settled(escrow.at))
          violations.push({
            check: 'escrow_without_hold',
            ids: { escrowId: escrow.escrowId, holdId },
            detail: `${escrow.status} escrow has no live hold`,
          });
      } else if (hold.amountMicros !== escrow.amountMicros && !facts.settlingHolds.has(holdId)) {
        // A hold with a settlement in flight (a milestone's part not yet posted) may still hold more.
        violations.push({
          check: 'hold_amount_mismatch',
          ids: { escrowId: escrow.escrowId, holdId },
          detail: 'the live hold and its escrow disagree on the amount',
          expected: escrow.amountMicros,
          actual: hold.amountMicros,
        });
      }
    }
  }
  return violations;
}

/**
 * Faucet claims and transfers out of the faucet treasury match one to one: a completed claim
 * has exactly its transfer (same agent and amount), a rejected one none, and every transfer
 * belongs to a pending or completed claim (pending: the transfer is made before the claim is
 * recorded as completed).
 */
export function checkClaimsAgainstTransfers(facts: FactSet, options: CrossCheckOptions): Violation[] {
  const settled = settledBefore(options);
  const violations: Violation[] = [];
  const claimed = new Map<string, FactOf<'faucet_claim'>>();
  for (const claim of facts.faucetClaims) {
    const earlier = claimed.get(claim.transferId);
    if (earlier) {
      violations.push({
        check: 'transfer_shared_by_claims',
        ids: { transferId: claim.transferId, claimIds: `${earlier.claimId},${claim.claimId}` },
        detail: 'two claims name the same treasury transfer',
      });
      continue;
    }
    claimed.set(claim.transferId, claim);
    const transfer = facts.faucetTransfers.get(claim.transferId);
    if (claim.status === 'rejected') {
      if (transfer)
        violations.push({
          check: 'transfer_for_rejected_claim',
          ids: { claimId: claim.claimId, transferId: claim.transferId },
          detail: 'a rejected claim was paid',
        });
    } else if (!transfer) {
      if (claim.status === 'completed' && settled(claim.at)) {
        violations.push({
          check: 'claim_without_transfer',
          ids: { claimId: claim.claimId, transferId: claim.transferId, agentId: claim.agentId },
          detail: 'completed claim has no transfer out of the faucet treasury',
        });
      }
    } else if (transfer.to !== claim.agentId || transfer.amountMicros !== claim.amountMicros) {
      violations.push({
        check: 'claim_transfer_mismatch',
        ids: { claimId: claim.claimId, transferId: claim.transferId },
        detail: 'claim and treasury transfer disagree on the agent or the amount',
        expected: `${claim.agentId}/${claim.amountMicros}`,
        actual: `${transfer.to}/${transfer.amountMicros}`,
      });
    }
  }
  for (const transfer of facts.faucetTransfers.values()) {
    if (!claimed.has(transfer.transferId) && settled(transfer.at)) {
      violations.push({
        check: 'transfer_without_claim',
        ids: { transferId: transfer.transferId, agentId: transfer.to },
        detail: `treasury transfer of ${transfer.amountMicros} micros matches no faucet claim`,
      });
    }
  }
  return violations;
}

/**
 * Market ↔ escrow: every awarded bid has exactly one escrow (its award recorded once, the escrow
 * opened and not refused); no escrow of a cancelled job stays funded; and every live job escrow
 * (funded or completed) belongs to an award the market recorded.
 */
export function checkAwardsAgainstEscrows(facts: FactSet, options: CrossCheckOptions): Violation[] {
  const settled = settledBefore(options);
  const violations: Violation[] = [];
  const awardsByBid = new Map<string, Array<FactOf<'market_award'>>>();
  for (const award of facts.marketAwards)
    awardsByBid.set(`${award.jobId}/${award.bidId}`, [
      ...(awardsByBid.get(`${award.jobId}/${award.bidId}`) ?? []),
      award,
    ]);
  for (const [key, awards] of awardsByBid) {
    if (awards.length > 1)
      violations.push({
        check: 'bid_awarded_twice',
        ids: { bid: key, escrowIds: awards.map((award) => award.escrowId).join(',') },
        detail: 'one bid has several funded awards',
      });
  }
  const awarded = new Set(facts.marketAwards.map((award) => award.escrowId));
  for (const award of facts.marketAwards) {
    const escrow = facts.jobEscrows.get(award.escrowId);
    if (!escrow) {
      if (settled(award.at))
        violations.push({
          check: 'award_without_escrow',
          ids: { jobId: award.jobId, escrowId: award.escrowId },
          detail: 'an awarded bid has no escrow',
        });
      continue;
    }
    if (
      award.jobStatus === 'cancelled' &&
      escrow.status === 'funded' &&
      settled(escrow.at) &&
      settled(award.at)
    ) {
      violations.push({
        check: 'cancelled_job_escrow_funded',
        ids: { jobId: award.jobId, escrowId: award.escrowId },
        detail: 'the job is cancelled but its escrow is still funded',
      });
    }
  }
  for (const escrow of facts.jobEscrows.values()) {
    if (
      (escrow.status === 'funded' || escrow.status === 'completed') &&
      !awarded.has(escrow.escrowId) &&
      settled(escrow.at)
    ) {
      violations.push({
        check: 'job_escrow_without_award',
        ids: { jobId: escrow.jobId, escrowId: escrow.escrowId },
        detail: `a ${escrow.status} job escrow belongs to no recorded award`,
      });
    }
  }
  return violations;
}
