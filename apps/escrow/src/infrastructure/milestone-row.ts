import type { Deliverable, MilestoneStatus, MilestoneView } from '@pf/contracts';
import type { EscrowEvent } from '../domain/escrow.js';
import type { Milestone, MilestoneTerms } from '../domain/milestones.js';
import { decodePayout, encodePayout } from './escrow-codec.js';

/**
 * The `milestones` column of an escrow row (jsonb, docs/adr/0017): one object per milestone, in
 * the create's order. Each milestone event is a patch of one element, the same in memory
 * (evolveRow) and in SQL (the projection merges it with `jsonb_set(..., old || patch)`), so the
 * live row, the rebuilt one and the command's view agree.
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

export function storedMilestones(terms: readonly MilestoneTerms[]): StoredMilestone[] {
  return terms.map((term) => ({
    description: term.description,
    amountMicros: term.amountMicros.toString(),
    status: 'pending',
    resultSummary: null,
    deliverable: null,
    completedAt: null,
    settledAt: null,
    payout: null,
  }));
}

export interface MilestonePatch {
  index: number;
  patch: Partial<StoredMilestone>;
}

/** The element patches a milestone event makes, recorded at `at`; none for other events. */
export function milestonePatches(event: EscrowEvent, at: Date): MilestonePatch[] {
  const when = at.toISOString();
  switch (event.type) {
    case 'milestone_completed':
      return [
        {
          index: event.milestone,
          patch: {
            status: 'completed',
            resultSummary: event.resultSummary,
            deliverable: event.deliverable ?? null,
            completedAt: when,
          },
        },
      ];
    case 'milestone_released':
      return [
        {
          index: event.milestone,
          patch: { status: 'released', settledAt: when, payout: encodePayout(event.payout) },
        },
      ];
    case 'milestones_refunded':
      return event.milestones.map((index) => ({ index, patch: { status: 'refunded', settledAt: when } }));
    default:
      return [];
  }
}

export function patchMilestones(
  milestones: readonly StoredMilestone[],
  patches: readonly MilestonePatch[],
): StoredMilestone[] {
  const next = [...milestones];
  for (const { index, patch } of patches) next[index] = { ...next[index]!, ...patch };
  return next;
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
