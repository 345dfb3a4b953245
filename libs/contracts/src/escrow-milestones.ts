import { z } from 'zod';
import type { Deliverable } from './escrow.js';

/**
 * Escrow milestones (docs/adr/0017): an escrow's amount cut into parts the counterparty
 * completes and the creator (or the evaluator) releases one by one. Each release is a casino
 * partial post of the escrow's hold, so the commission is taken on each released part only.
 */
export const MILESTONE_LIMITS = {
  minItems: 1,
  maxItems: 20,
  minDescriptionChars: 1,
  maxDescriptionChars: 500,
} as const;

export const milestoneErrors = {
  /** `milestones` malformed: count, a description, an amount ≤ 0, or a sum other than the amount. */
  invalidMilestones: 'invalid_milestones',
  /** `milestone` names no milestone of this escrow, or is missing / given where it does not apply. */
  invalidMilestone: 'invalid_milestone',
} as const;

export const milestoneHttpStatuses: Readonly<Record<string, number>> = {
  invalid_milestones: 400,
  invalid_milestone: 400,
};

/** A milestone as create takes it over the bus; the domain checks the rules (invalid_milestones). */
export const milestoneInputSchema = z.object({
  description: z.string().max(100_000),
  amountMicros: z.string().regex(/^-?[0-9]{1,19}$/, 'must be an integer number of micro-dollars'),
});
export type MilestoneInput = z.infer<typeof milestoneInputSchema>;
export const milestonesInputSchema = z.array(milestoneInputSchema).max(1_000);

/** A milestone's index in the list given at create (0-based), as complete and release name it. */
export const milestoneIndexSchema = z.number().int().min(0).max(1_000);

export const MILESTONE_STATUSES = ['pending', 'completed', 'released', 'refunded'] as const;
export type MilestoneStatus = (typeof MILESTONE_STATUSES)[number];

export interface MilestoneView {
  index: number;
  description: string;
  amountMicros: string;
  status: MilestoneStatus;
  resultSummary: string | null;
  /** What the counterparty handed over with this milestone's completion, if anything. */
  deliverable: Deliverable | null;
  completedAt: string | null;
  /** When it was released (paid) or refunded. */
  settledAt: string | null;
  /** Once released: the worker's net, the commission (house + referrer) and any evaluator fee. */
  payout: {
    counterpartyMicros: string;
    commissionMicros: string;
    houseMicros: string;
    referrerMicros: string;
    evaluatorMicros: string;
  } | null;
}

/** The casino part id of milestone `index` of an escrow: derived, so every retry posts the same part. */
export function milestonePartId(escrowId: string, index: number): string {
  return `${escrowId}:m${index}`;
}

/** The casino part id of what an escrow's deadline settles (auto-released and refunded milestones together). */
export function deadlinePartId(escrowId: string): string {
  return `${escrowId}:deadline`;
}
