import {
  deadlinePartId,
  DomainError,
  escrowErrors,
  MILESTONE_LIMITS,
  milestoneErrors,
  milestonePartId,
  type Deliverable,
  type MilestoneStatus,
} from '@pf/contracts';
import type { EscrowEvent, EscrowFacts, EscrowState, Payout } from './escrow.js';

/**
 * Milestones (docs/adr/0017): the escrow's amount cut into parts, each completed by the
 * counterparty and released on its own. Pure rules used by the escrow decider; the escrow stays
 * `funded` while milestones are open and is settled by `milestones_settled` once none is.
 */

/** A milestone as create gives it: what is delivered and what it pays. */
export interface MilestoneTerms {
  description: string;
  amountMicros: bigint;
}

export interface Milestone extends MilestoneTerms {
  status: MilestoneStatus;
  resultSummary: string | null;
  /** Once released: its payout (the commission taken on this part only). */
  payout: Payout | null;
}

type Escrow = Exclude<EscrowState, { status: 'none' }>;
type MilestoneEscrow = Escrow & { milestones: Milestone[] };

/** Count, descriptions, amounts > 0 and a sum equal to the escrow's amount, exactly. */
export function validateMilestones(milestones: readonly MilestoneTerms[], amountMicros: bigint): void {
  const refuse = (message: string) => new DomainError(milestoneErrors.invalidMilestones, message);
  if (milestones.length < MILESTONE_LIMITS.minItems || milestones.length > MILESTONE_LIMITS.maxItems)
    throw refuse(`milestones must have ${MILESTONE_LIMITS.minItems} to ${MILESTONE_LIMITS.maxItems} items`);
  let sumMicros = 0n;
  for (const [index, milestone] of milestones.entries()) {
    const chars = [...milestone.description].length;
    if (chars < MILESTONE_LIMITS.minDescriptionChars || chars > MILESTONE_LIMITS.maxDescriptionChars)
      throw refuse(
        `milestones[${index}].description must have ${MILESTONE_LIMITS.minDescriptionChars} to ${MILESTONE_LIMITS.maxDescriptionChars} characters`,
      );
    if (milestone.amountMicros <= 0n) throw refuse(`milestones[${index}].amount_usd must be more than 0`);
    sumMicros += milestone.amountMicros;
  }
  if (sumMicros !== amountMicros)
    throw refuse(
      `milestone amounts sum to ${formatMicros(sumMicros)} but amount_usd is ${formatMicros(amountMicros)}: they must be equal`,
    );
}

function formatMicros(micros: bigint): string {
  const whole = micros / 1_000_000n;
  const fraction = (micros % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : `${whole}`;
}

export function hasMilestones(escrow: Escrow): escrow is MilestoneEscrow {
  return escrow.milestones !== undefined && escrow.milestones.length > 0;
}

/**
 * `milestone` must name a milestone of an escrow that has them, and an escrow with milestones
 * must be told which one: completing or releasing "the escrow" would be ambiguous.
 */
export function requireMilestoneChoice(escrow: Escrow, milestone: number | undefined): number | undefined {
  if (!hasMilestones(escrow)) {
    if (milestone === undefined) return undefined;
    throw new DomainError(milestoneErrors.invalidMilestone, 'this escrow has no milestones');
  }
  if (milestone === undefined)
    throw new DomainError(
      milestoneErrors.invalidMilestone,
      `this escrow has ${escrow.milestones.length} milestones: say which one with milestone (0 to ${escrow.milestones.length - 1})`,
    );
  if (!Number.isSafeInteger(milestone) || milestone < 0 || milestone >= escrow.milestones.length)
    throw new DomainError(
      milestoneErrors.invalidMilestone,
      `milestone must be 0 to ${escrow.milestones.length - 1}`,
    );
  return milestone;
}

function requireMilestoneStatus(
  escrow: MilestoneEscrow,
  index: number,
  allowed: readonly MilestoneStatus[],
): void {
  const status = escrow.milestones[index]!.status;
  if (!allowed.includes(status))
    throw new DomainError(
      escrowErrors.invalidStatus,
      `milestone ${index} is ${status}; this needs ${allowed.join(' or ')}`,
      { status: escrow.status, milestone: index, milestone_status: status },
    );
}

/** Something of an escrow with milestones was already paid: a whole-escrow refund or dispute no longer fits. */
export function anyMilestoneReleased(escrow: Escrow): boolean {
  return hasMilestones(escrow) && escrow.milestones.some((milestone) => milestone.status === 'released');
}

export function decideMilestoneComplete(
  escrow: MilestoneEscrow,
  index: number,
  actorId: string,
  resultSummary: string | null,
  deliverable?: Deliverable | null,
): EscrowEvent[] {
  requireMilestoneStatus(escrow, index, ['pending']);
  return [
    {
      type: 'milestone_completed',
      escrowId: escrow.escrowId,
      milestone: index,
      by: actorId,
      resultSummary,
      // What was handed over for this part: kept in the event, so the log proves it.
      ...(deliverable ? { deliverable } : {}),
    },
  ];
}

/**
 * Releases one milestone (pending or completed, as a whole escrow can be released before its
 * completion): its payout is a release of its amount, commission on this part only. The last
 * one settles the escrow.
 */
export function decideMilestoneRelease(
  escrow: MilestoneEscrow,
  index: number,
  by: string,
  trigger: 'creator' | 'evaluator',
  payoutOf: (amountMicros: bigint) => Payout,
): EscrowEvent[] {
  requireMilestoneStatus(escrow, index, ['pending', 'completed']);
  const amountMicros = escrow.milestones[index]!.amountMicros;
  const released: EscrowEvent = {
    type: 'milestone_released',
    escrowId: escrow.escrowId,
    milestone: index,
    by,
    trigger,
    amountMicros,
    payout: payoutOf(amountMicros),
  };
  return withSettlement(escrow, [released]);
}

/**
 * The deadline of an escrow with milestones: completed milestones are released as if their
 * creator had (the work was delivered and not disputed), the unfinished rest goes back.
 */
export function decideMilestonesExpire(
  escrow: MilestoneEscrow,
  payoutOf: (amountMicros: bigint) => Payout,
): EscrowEvent[] {
  const events: EscrowEvent[] = [];
  const refunded: number[] = [];
  let refundedMicros = 0n;
  for (const [index, milestone] of escrow.milestones.entries()) {
    if (milestone.status === 'completed')
      events.push({
        type: 'milestone_released',
        escrowId: escrow.escrowId,
        milestone: index,
        by: null,
        trigger: 'timeout',
        amountMicros: milestone.amountMicros,
        payout: payoutOf(milestone.amountMicros),
      });
    if (milestone.status === 'pending') {
      refunded.push(index);
      refundedMicros += milestone.amountMicros;
    }
  }
  if (refunded.length > 0)
    events.push({
      type: 'milestones_refunded',
      escrowId: escrow.escrowId,
      milestones: refunded,
      trigger: 'timeout',
      amountMicros: refundedMicros,
    });
  return withSettlement(escrow, events);
}

/** Appends `milestones_settled` when `events` leave no milestone open. */
function withSettlement(escrow: MilestoneEscrow, events: EscrowEvent[]): EscrowEvent[] {
  const milestones = events.reduce(evolveMilestones, escrow.milestones);
  if (milestones.some((milestone) => milestone.status === 'pending' || milestone.status === 'completed'))
    return events;
  const payout = totalPayout(escrow, milestones);
  const released = milestones.some((milestone) => milestone.status === 'released');
  return [
    ...events,
    {
      type: 'milestones_settled',
      escrowId: escrow.escrowId,
      outcome: released ? 'released' : 'refunded',
      amountMicros: escrow.amountMicros,
      payout: released ? payout : null,
    },
  ];
}

/** The escrow's whole payout: the released milestones' payouts, and the refunded rest as the creator's part. */
function totalPayout(escrow: Pick<EscrowFacts, 'referrerId'>, milestones: readonly Milestone[]): Payout {
  const total: Payout = {
    counterpartyMicros: 0n,
    commissionMicros: 0n,
    houseMicros: 0n,
    referrerMicros: 0n,
    referrerId: escrow.referrerId,
    creatorMicros: 0n,
  };
  for (const milestone of milestones) {
    if (milestone.status === 'refunded') total.creatorMicros += milestone.amountMicros;
    const payout = milestone.payout;
    if (!payout) continue;
    total.counterpartyMicros += payout.counterpartyMicros;
    total.commissionMicros += payout.commissionMicros;
    total.houseMicros += payout.houseMicros;
    total.referrerMicros += payout.referrerMicros;
    total.creatorMicros += payout.creatorMicros;
    if (payout.evaluatorId !== undefined) {
      total.evaluatorId = payout.evaluatorId;
      total.evaluatorMicros = (total.evaluatorMicros ?? 0n) + (payout.evaluatorMicros ?? 0n);
    }
  }
  return total;
}

/** The milestones after `event` (unchanged by events that are not about milestones). */
export function evolveMilestones(milestones: Milestone[], event: EscrowEvent): Milestone[] {
  switch (event.type) {
    case 'milestone_completed':
      return milestones.map((milestone, index) =>
        index === event.milestone
          ? { ...milestone, status: 'completed', resultSummary: event.resultSummary }
          : milestone,
      );
    case 'milestone_released':
      return milestones.map((milestone, index) =>
        index === event.milestone ? { ...milestone, status: 'released', payout: event.payout } : milestone,
      );
    case 'milestones_refunded':
      return milestones.map((milestone, index) =>
        event.milestones.includes(index) ? { ...milestone, status: 'refunded' } : milestone,
      );
    default:
      return milestones;
  }
}

export function openMilestones(terms: readonly MilestoneTerms[]): Milestone[] {
  return terms.map((term) => ({
    description: term.description,
    amountMicros: term.amountMicros,
    status: 'pending',
    resultSummary: null,
    payout: null,
  }));
}

/**
 * Invariant of an escrow with milestones: the milestones' amounts sum to the escrow's amount,
 * and what was released (payouts) plus refunded plus still open is exactly that amount.
 */
export function assertMilestonesConserved(escrow: EscrowState): void {
  if (escrow.status === 'none' || !escrow.milestones) return;
  let sumMicros = 0n;
  for (const milestone of escrow.milestones) {
    sumMicros += milestone.amountMicros;
    const payout = milestone.payout;
    if (milestone.status === 'released') {
      const paid = payout
        ? payout.counterpartyMicros +
          payout.houseMicros +
          payout.referrerMicros +
          payout.creatorMicros +
          (payout.evaluatorMicros ?? 0n)
        : -1n;
      if (paid !== milestone.amountMicros)
        throw new Error(
          `escrow ${escrow.escrowId}: a released milestone's payout does not conserve its amount`,
        );
    } else if (payout) throw new Error(`escrow ${escrow.escrowId}: an unreleased milestone has a payout`);
  }
  if (sumMicros !== escrow.amountMicros)
    throw new Error(`escrow ${escrow.escrowId}: milestones sum to ${sumMicros}, not ${escrow.amountMicros}`);
}

/** What the casino is owed for milestone events: one partial post of the hold. */
export interface MilestonePart {
  partId: string;
  /** The payouts of the milestones this part releases. */
  payouts: Payout[];
  /** What goes back to the creator (milestones refunded at the deadline). */
  refundMicros: bigint;
}

/**
 * The part a decision owes: a creator's or evaluator's release is the milestone's own part
 * (`<escrow>:m<n>`); a deadline pays every auto-released milestone and refunds the unfinished
 * ones in one part (`<escrow>:deadline`). Each part is an exact amount, never "the rest", so
 * parts still in the outbox may reach casino in any order and each lands once.
 */
export function milestonePartOf(escrowId: string, events: readonly EscrowEvent[]): MilestonePart | null {
  const payouts: Payout[] = [];
  let refundMicros = 0n;
  let partId: string | null = null;
  for (const event of events) {
    if (event.type === 'milestone_released') {
      payouts.push(event.payout);
      partId =
        event.trigger === 'timeout' ? deadlinePartId(escrowId) : milestonePartId(escrowId, event.milestone);
    }
    if (event.type === 'milestones_refunded') {
      refundMicros += event.amountMicros;
      partId = deadlinePartId(escrowId);
    }
  }
  return partId === null ? null : { partId, payouts, refundMicros };
}
