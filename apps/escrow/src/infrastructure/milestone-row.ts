import type { Deliverable, MilestoneStatus, MilestoneView } from '@pf/contracts';
import type { EscrowEvent } from '../domain/escrow.js';
import type { Milestone } from '../domain/milestones.js';
import { decodePayout, encodePayout } from './escrow-codec.js';

/**
 * The `milestones` column of an escrow row (jsonb, docs/adr/0017): one object per milestone, in
 * the create's order, built like the row itself from the decider's milestones (status, result,
 * payout) and the meta beside them (the deliverable and the times).
 */
export interface StoredMilestone {
  description: string;
  amountMicros: string;
  status: MilestoneStatus;
  resultSummary: string | null;
  /** What was handed over with its completion; absent in rows written before it was kept. */
  deliverable?: Deliverable | null;
  completedAt: string | null;
  settledAt: string | null;
  payout: Record<string, unknown> | null;
}

/** What the row keeps of a milestone beside the decider's state. */
export interface MilestoneMeta {
  deliverable: Deliverable | null;
  completedAt: string | null;
  settledAt: string | null;
}

/** A stored milestone's meta, or a fresh one's. */
export function milestoneMetaOf(stored?: StoredMilestone): MilestoneMeta {
  return {
    deliverable: stored?.deliverable ?? null,
    completedAt: stored?.completedAt ?? null,
    settledAt: stored?.settledAt ?? null,
  };
}

/** Notes when a milestone event happened (recorded at `at`) and what it handed over. */
export function stampMilestones(
  meta: readonly MilestoneMeta[],
  event: EscrowEvent,
  at: Date,
): MilestoneMeta[] {
  const when = at.toISOString();
  const next = [...meta];
  switch (event.type) {
    case 'milestone_completed':
      next[event.milestone] = {
        ...next[event.milestone]!,
        deliverable: event.deliverable ?? null,
        completedAt: when,
      };
      return next;
    case 'milestone_released':
      next[event.milestone] = { ...next[event.milestone]!, settledAt: when };
      return next;
    case 'milestones_refunded':
      for (const index of event.milestones) next[index] = { ...next[index]!, settledAt: when };
      return next;
    default:
      return next;
  }
}

export function storedMilestonesOf(
  milestones: readonly Milestone[],
  meta: readonly MilestoneMeta[],
): StoredMilestone[] {
  return milestones.map((milestone, index) => ({
    description: milestone.description,
    amountMicros: milestone.amountMicros.toString(),
    status: milestone.status,
    resultSummary: milestone.resultSummary,
    ...milestoneMetaOf(),
    ...meta[index],
    payout: milestone.payout ? encodePayout(milestone.payout) : null,
  }));
}

/** The decider's milestones from the row. */
export function milestonesFromStored(stored: readonly StoredMilestone[]): Milestone[] {
  return stored.map((milestone) => ({
    description: milestone.description,
    amountMicros: BigInt(milestone.amountMicros),
    status: milestone.status,
    resultSummary: milestone.resultSummary,
    payout: milestone.payout ? decodePayout(milestone.payout) : null,
  }));
}

export function milestoneViews(stored: readonly StoredMilestone[]): MilestoneView[] {
  return stored.map((milestone, index) => {
    const payout = milestone.payout ? decodePayout(milestone.payout) : null;
    return {
      index,
      description: milestone.description,
      amountMicros: milestone.amountMicros,
      status: milestone.status,
      resultSummary: milestone.resultSummary,
      deliverable: milestone.deliverable ?? null,
      completedAt: milestone.completedAt,
      settledAt: milestone.settledAt,
      payout: payout
        ? {
            counterpartyMicros: payout.counterpartyMicros.toString(),
            commissionMicros: payout.commissionMicros.toString(),
            houseMicros: payout.houseMicros.toString(),
            referrerMicros: payout.referrerMicros.toString(),
            evaluatorMicros: (payout.evaluatorMicros ?? 0n).toString(),
          }
        : null,
    };
  });
}
