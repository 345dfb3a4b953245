import {
  DomainError,
  MILESTONE_LIMITS,
  milestoneErrors,
  type EscrowView,
  type MilestoneView,
} from '@pf/contracts';
import { InvalidAmountError, parseUsd } from '@pf/money';
import { usd } from './request.js';

/**
 * The API side of escrow milestones (docs/adr/0017): `milestones` on create, `milestone` on
 * complete and release, and how GET shows them. Shapes are checked here, before anything is
 * sent, with the API's codes; the rules (count, sum = amount) are the escrow decider's.
 */

/** `milestones: [{description, amount_usd}]` as the bus carries them; undefined when absent. */
export function parseMilestones(
  value: unknown,
  maxMicros: bigint,
): Array<{ description: string; amountMicros: string }> | undefined {
  if (value === undefined || value === null) return undefined;
  const refuse = (message: string) => new DomainError(milestoneErrors.invalidMilestones, message);
  if (
    !Array.isArray(value) ||
    value.length < MILESTONE_LIMITS.minItems ||
    value.length > MILESTONE_LIMITS.maxItems
  )
    throw refuse(
      `milestones must be a list of ${MILESTONE_LIMITS.minItems} to ${MILESTONE_LIMITS.maxItems} {description, amount_usd}`,
    );
  return value.map((item: unknown, index) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      throw refuse(`milestones[${index}] must be an object {description, amount_usd}`);
    const { description, amount_usd: amount } = item as Record<string, unknown>;
    if (typeof description !== 'string') throw refuse(`milestones[${index}].description must be a string`);
    let amountMicros: bigint;
    try {
      amountMicros = parseUsd(amount, { field: `milestones[${index}].amount_usd`, maxMicros });
    } catch (error) {
      if (error instanceof InvalidAmountError) throw refuse(error.message);
      throw error;
    }
    return { description, amountMicros: amountMicros.toString() };
  });
}

/** `milestone`: the 0-based index of a milestone; undefined when absent. */
export function parseMilestoneIndex(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (
    typeof value !== 'number' ||
    !Number.isSafeInteger(value) ||
    value < 0 ||
    value >= MILESTONE_LIMITS.maxItems
  )
    throw new DomainError(
      milestoneErrors.invalidMilestone,
      `milestone must be an integer from 0 to ${MILESTONE_LIMITS.maxItems - 1} (its index in the create's list)`,
    );
  return value;
}

export function milestoneJson(milestone: MilestoneView) {
  return {
    milestone: milestone.index,
    description: milestone.description,
    amount_usd: usd(milestone.amountMicros),
    status: milestone.status,
    result_summary: milestone.resultSummary,
    deliverable: milestone.deliverable,
    completed_at: milestone.completedAt,
    settled_at: milestone.settledAt,
    payout: milestone.payout
      ? {
          released_to_counterparty: usd(milestone.payout.counterpartyMicros),
          commission: usd(milestone.payout.commissionMicros),
          referral_commission: usd(milestone.payout.referrerMicros),
          evaluator_fee_usd: usd(milestone.payout.evaluatorMicros),
        }
      : null,
  };
}

/** `milestones` for the escrow's views; nothing for an escrow without. */
export function milestonesField(escrow: EscrowView) {
  return escrow.milestones ? { milestones: escrow.milestones.map(milestoneJson) } : {};
}

/**
 * The reply to completing or releasing one milestone: the fields the whole-escrow reply always
 * has (`next_step` on complete; `released_to_counterparty` and `commission` on release, for this
 * milestone), plus the milestone and how many are still open.
 */
export function milestoneReply(escrow: EscrowView, index: number, action: 'complete' | 'release') {
  const milestone = escrow.milestones?.[index];
  if (!milestone) throw new Error(`escrow ${escrow.escrowId} has no milestone ${index} after ${action}`);
  const open = escrow.milestones!.filter((m) => m.status === 'pending' || m.status === 'completed').length;
  const base = {
    escrow_id: escrow.escrowId,
    status: escrow.status,
    milestone: milestoneJson(milestone),
    milestones_open: open,
    auto_release_at: escrow.autoReleaseAt,
  };
  const payout = milestone.payout;
  if (action === 'release' && payout)
    return {
      ...base,
      amount_released: usd(payout.counterpartyMicros),
      released_to_counterparty: usd(payout.counterpartyMicros),
      commission: usd(payout.commissionMicros),
      commission_usd: usd(payout.commissionMicros),
      referral_commission: usd(payout.referrerMicros),
      evaluator_fee_usd: usd(payout.evaluatorMicros),
      counterparty_id: escrow.counterpartyId,
      message: `Released milestone ${index}: $${usd(payout.counterpartyMicros)} to ${escrow.counterpartyId} (commission $${usd(payout.commissionMicros)}).${open === 0 ? ' Every milestone is settled.' : ''}`,
    };
  const releaser = escrow.evaluatorId ? 'the evaluator' : 'the creator';
  return {
    ...base,
    result_summary: milestone.resultSummary,
    message: `Milestone ${index} marked complete; ${releaser} can now release it.`,
    next_step: `${releaser[0]!.toUpperCase()}${releaser.slice(1)} releases with POST /escrow/release/${escrow.escrowId} {"milestone": ${index}}; otherwise it is released automatically at auto_release_at.`,
  };
}
