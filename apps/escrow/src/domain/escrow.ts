import {
  AGENT_ID_PATTERN,
  DomainError,
  ErrorCode,
  ESCROW_LIMITS,
  escrowErrors,
  HOUSE_REVENUE_ACCOUNT,
  parseDeliverable,
  type Deliverable,
  type EscrowCancelReason,
  type EscrowStatus,
  type ResolutionOutcome,
} from '@pf/contracts';
import type { Decider } from '@pf/contracts';
import { basisPointsOf, BPS_PER_WHOLE, releaseSplit, splitByBasisPoints } from '@pf/money';
import {
  anyMilestoneReleased,
  assertMilestonesConserved,
  decideMilestoneComplete,
  decideMilestoneRelease,
  decideMilestonesExpire,
  evolveMilestones,
  hasMilestones,
  openMilestones,
  requireMilestoneChoice,
  validateMilestones,
  type Milestone,
  type MilestoneTerms,
} from './milestones.js';

/**
 * The escrow aggregate, one stream per escrow. Pure: no clock, no I/O. Time enters only as the
 * events' recorded times (the database's clock), and "a deadline has passed" is decided by the
 * sweeper's query (`due_at <= now()`), so `expire` here only says what a passed deadline means.
 *
 * Every decision that moves money is recorded first (released, refunded, declined, resolved,
 * carrying the exact split); the casino post or void that carries it out follows from the
 * settlement outbox and is idempotent on the escrow id (see docs/events.md).
 */

/** Escrow settings that come from configuration, passed in with the command. */
export interface EscrowPolicy {
  commissionBps: number;
  minTimeoutMs: number;
  maxTimeoutMs: number;
  minAmountMicros: bigint;
}

export interface OpenEscrow {
  kind: 'open';
  escrowId: string;
  creatorId: string;
  counterpartyId: string;
  amountMicros: bigint;
  description: string;
  timeoutMs: number;
  /** The creator's referrer (from casino), fixed when the escrow opens. */
  referrerId: string | null;
  policy: EscrowPolicy;
  /** The market's job this escrow pays for (only the market sets it); absent for direct escrows. */
  jobId?: string | null;
  /** One of a race's escrows: only the market may release it (one payout per race). */
  race?: boolean;
  /** The agent who alone may release or reject (docs/adr/0016); absent: the creator releases. */
  evaluatorId?: string | null;
  /** The evaluator's fee on its release, in basis points of the amount (0..1000). */
  evaluatorFeeBps?: number;
  /** The amount cut into parts released one by one (docs/adr/0017); absent: one release. */
  milestones?: MilestoneTerms[];
  /** The creator's sub-key, when the escrow was created with one: casino checks its mandate on the hold (ADR 0019). */
  keyId?: string;
}

export type EscrowCommand =
  | OpenEscrow
  | { kind: 'record_hold'; outcome: 'held' }
  | {
      kind: 'record_hold';
      outcome: 'refused';
      code: string;
      message: string;
      availableMicros: bigint | null;
      /** A mandate refusal's facts (which limit, what remains), shown to the creator as they came. */
      details?: Record<string, string>;
    }
  | {
      kind: 'complete';
      actorId: string;
      resultSummary: string | null;
      deliverable?: Deliverable | null;
      milestone?: number;
    }
  | { kind: 'release'; actorId: string; jobId?: string | null; milestone?: number }
  | { kind: 'reject'; actorId: string; reason: string; refund: boolean }
  | { kind: 'request_cancel'; actorId: string }
  | { kind: 'consent_cancel'; actorId: string }
  | { kind: 'cancel'; jobId: string; reason: EscrowCancelReason }
  | { kind: 'decline'; actorId: string }
  | { kind: 'dispute'; actorId: string; reason: string | null }
  | { kind: 'expire' }
  | { kind: 'resolve'; outcome: ResolutionOutcome; counterpartyShareBps: number | null };

/** Where the money of a post goes; every part ≥ 0 and the parts sum to the amount exactly. */
export interface Payout {
  counterpartyMicros: bigint;
  commissionMicros: bigint;
  houseMicros: bigint;
  referrerMicros: bigint;
  referrerId: string | null;
  creatorMicros: bigint;
  /**
   * Present only on an escrow with an evaluator (older payouts never carry it): the fee, which is
   * more than 0 only when the evaluator released. Taken out of the counterparty's part.
   */
  evaluatorMicros?: bigint;
  evaluatorId?: string;
}

/** Who released: the creator (or the market for it), the evaluator, or the deadline. */
export type ReleaseTrigger = 'creator' | 'evaluator' | 'timeout';

export type EscrowEvent =
  | {
      type: 'opened';
      escrowId: string;
      creatorId: string;
      counterpartyId: string;
      amountMicros: bigint;
      commissionBps: number;
      referrerId: string | null;
      description: string;
      timeoutMs: number;
      /** Present only on a market escrow (schema 1 payloads of direct escrows are unchanged). */
      jobId?: string;
      race?: boolean;
      /** Present only when the escrow has an evaluator (schema 2). */
      evaluatorId?: string;
      evaluatorFeeBps?: number;
      /** Present only on an escrow with milestones (docs/adr/0017). */
      milestones?: MilestoneTerms[];
      /** Present only when created with a sub-key (ADR 0019). */
      keyId?: string;
    }
  | { type: 'funded'; escrowId: string; holdId: string; amountMicros: bigint }
  | {
      type: 'rejected';
      escrowId: string;
      code: string;
      message: string;
      availableMicros: bigint | null;
      details?: Record<string, string>;
    }
  | {
      type: 'completed';
      escrowId: string;
      by: string;
      resultSummary: string | null;
      /** Present only when the counterparty handed one over (schema 2). */
      deliverable?: Deliverable;
    }
  | { type: 'disputed'; escrowId: string; by: string; reason: string | null }
  | {
      type: 'released';
      escrowId: string;
      by: string | null;
      trigger: ReleaseTrigger;
      amountMicros: bigint;
      payout: Payout;
    }
  | { type: 'refunded'; escrowId: string; trigger: 'timeout'; amountMicros: bigint }
  | { type: 'declined'; escrowId: string; by: string; amountMicros: bigint }
  | { type: 'cancelled'; escrowId: string; jobId: string; reason: EscrowCancelReason; amountMicros: bigint }
  /** The evaluator sent the work back: the escrow is funded again and the counterparty may complete again. */
  | { type: 'evaluation_rejected'; escrowId: string; by: string; reason: string }
  /** The evaluator rejected the work and gave the money back in full (no commission, no fee). */
  | { type: 'evaluator_refunded'; escrowId: string; by: string; reason: string; amountMicros: bigint }
  /** One half of a cancel by agreement: the creator asked, or the counterparty agreed first. */
  | { type: 'cancel_requested'; escrowId: string; by: string }
  | { type: 'cancel_consented'; escrowId: string; by: string }
  /** The second half arrived: a full refund to the creator, no commission. */
  | { type: 'mutually_cancelled'; escrowId: string; by: string; amountMicros: bigint }
  /** Milestone events (docs/adr/0017): `milestone` is the 0-based index in the create's list. */
  | {
      type: 'milestone_completed';
      escrowId: string;
      milestone: number;
      by: string;
      resultSummary: string | null;
      /** Present only when the counterparty handed one over with this milestone. */
      deliverable?: Deliverable;
    }
  | {
      type: 'milestone_released';
      escrowId: string;
      milestone: number;
      by: string | null;
      trigger: ReleaseTrigger;
      amountMicros: bigint;
      payout: Payout;
    }
  | {
      type: 'milestones_refunded';
      escrowId: string;
      milestones: number[];
      trigger: 'timeout';
      amountMicros: bigint;
    }
  /** No milestone is left open: the escrow is settled (`released` if any milestone was paid). */
  | {
      type: 'milestones_settled';
      escrowId: string;
      outcome: 'released' | 'refunded';
      amountMicros: bigint;
      payout: Payout | null;
    }
  | {
      type: 'resolved';
      escrowId: string;
      outcome: ResolutionOutcome;
      counterpartyShareBps: number;
      amountMicros: bigint;
      payout: Payout | null;
    };

export type EscrowEventType = EscrowEvent['type'];

export interface EscrowFacts {
  escrowId: string;
  creatorId: string;
  counterpartyId: string;
  amountMicros: bigint;
  commissionBps: number;
  referrerId: string | null;
  description: string;
  timeoutMs: number;
  resultSummary: string | null;
  payout: Payout | null;
  jobId?: string;
  race?: boolean;
  evaluatorId?: string;
  evaluatorFeeBps?: number;
  /** What the last completion handed over, and why the evaluator last sent the work back. */
  deliverable: Deliverable | null;
  rejectReason: string | null;
  /** The creator asked to cancel / the counterparty agreed to cancel (docs/adr/0016). */
  cancelRequested: boolean;
  cancelConsented: boolean;
  milestones?: Milestone[];
}

export type EscrowState = { status: 'none' } | ({ status: EscrowStatus } & EscrowFacts);

const FORBIDDEN_MESSAGE = 'only a party to this escrow with the right role may do this';

export const escrowDecider: Decider<EscrowCommand, EscrowEvent, EscrowState> = {
  initialState: () => ({ status: 'none' }),
  decide: (command, state) => {
    const events = decideCommand(command, state);
    for (const event of events) assertConserved(event);
    assertMilestonesConserved(events.reduce(evolve, state));
    return events;
  },
  evolve,
};

function decideCommand(command: EscrowCommand, state: EscrowState): EscrowEvent[] {
  switch (command.kind) {
    case 'open':
      return decideOpen(command, state);
    case 'record_hold':
      return decideHoldOutcome(command, state);
    case 'expire':
      return decideExpire(state);
    case 'resolve':
      return decideResolve(command, requireEscrow(state));
    case 'cancel':
      return decideCancel(command, requireEscrow(state));
    case 'reject':
      return decideReject(command, requireEscrow(state));
    case 'request_cancel':
    case 'consent_cancel':
      return decideCancelByAgreement(command, requireEscrow(state));
    default:
      return decideAction(command, requireEscrow(state));
  }
}

/** Validation order follows API.md's list of create errors; nothing is recorded on a refusal. */
export function validateOpen(command: OpenEscrow): void {
  const { policy } = command;
  if (command.amountMicros < policy.minAmountMicros) {
    throw new DomainError(
      ErrorCode.invalidAmount,
      `amount_usd is below the minimum of ${Number(policy.minAmountMicros) / 1e6}`,
    );
  }
  const chars = [...command.description].length;
  if (chars < ESCROW_LIMITS.minDescriptionChars || chars > ESCROW_LIMITS.maxDescriptionChars) {
    throw new DomainError(
      escrowErrors.invalidDescription,
      `description must have ${ESCROW_LIMITS.minDescriptionChars} to ${ESCROW_LIMITS.maxDescriptionChars} characters`,
    );
  }
  if (!AGENT_ID_PATTERN.test(command.counterpartyId)) {
    throw new DomainError(
      escrowErrors.invalidCounterparty,
      'counterparty_agent_id must be an agent id (ag_ + 12 hex)',
    );
  }
  if (command.counterpartyId === command.creatorId)
    throw new DomainError(escrowErrors.selfEscrow, 'an agent cannot open an escrow with itself');
  if (
    !Number.isSafeInteger(command.timeoutMs) ||
    command.timeoutMs < policy.minTimeoutMs ||
    command.timeoutMs > policy.maxTimeoutMs
  ) {
    throw new DomainError(
      escrowErrors.invalidTimeout,
      `timeout_hours must be between ${describeHours(policy.minTimeoutMs)} and ${describeHours(policy.maxTimeoutMs)}`,
    );
  }
  if (
    !Number.isSafeInteger(policy.commissionBps) ||
    policy.commissionBps < 0 ||
    policy.commissionBps > 10_000
  ) {
    throw new Error(`commission must be 0..10000 basis points, got ${policy.commissionBps}`);
  }
  if (command.milestones !== undefined) {
    if (command.jobId) throw new Error('a market escrow cannot have milestones');
    validateMilestones(command.milestones, command.amountMicros);
  }
  validateEvaluator(command);
}

/** An evaluator is a third agent; its fee needs an evaluator and leaves the worker a part ≥ 0. */
function validateEvaluator(command: OpenEscrow): void {
  const evaluatorId = command.evaluatorId ?? null;
  const feeBps = command.evaluatorFeeBps ?? 0;
  if (evaluatorId !== null) {
    if (!AGENT_ID_PATTERN.test(evaluatorId))
      throw new DomainError(
        escrowErrors.invalidEvaluator,
        'evaluator_agent_id must be an agent id (ag_ + 12 hex)',
      );
    if (evaluatorId === command.creatorId || evaluatorId === command.counterpartyId)
      throw new DomainError(
        escrowErrors.invalidEvaluator,
        'the evaluator must be a third agent, neither the creator nor the counterparty',
      );
    if (command.jobId) throw new Error('a market escrow cannot have an evaluator');
  }
  if (!Number.isSafeInteger(feeBps) || feeBps < 0 || feeBps > ESCROW_LIMITS.maxEvaluatorFeeBps)
    throw new DomainError(
      escrowErrors.invalidEvaluatorFee,
      `evaluator_fee_bps must be an integer from 0 to ${ESCROW_LIMITS.maxEvaluatorFeeBps}`,
    );
  if (feeBps > 0 && evaluatorId === null)
    throw new DomainError(escrowErrors.invalidEvaluatorFee, 'evaluator_fee_bps needs an evaluator_agent_id');
  if (command.policy.commissionBps + feeBps > Number(BPS_PER_WHOLE))
    throw new Error('commission and evaluator fee exceed the amount');
}

function decideOpen(command: OpenEscrow, state: EscrowState): EscrowEvent[] {
  validateOpen(command);
  const opened: EscrowEvent = {
    type: 'opened',
    escrowId: command.escrowId,
    creatorId: command.creatorId,
    counterpartyId: command.counterpartyId,
    amountMicros: command.amountMicros,
    commissionBps: command.policy.commissionBps,
    referrerId: command.referrerId === command.creatorId ? null : command.referrerId,
    description: command.description,
    timeoutMs: command.timeoutMs,
    ...(command.jobId ? { jobId: command.jobId, race: command.race === true } : {}),
    ...(command.evaluatorId
      ? { evaluatorId: command.evaluatorId, evaluatorFeeBps: command.evaluatorFeeBps ?? 0 }
      : {}),
    ...(command.milestones ? { milestones: command.milestones.map((m) => ({ ...m })) } : {}),
    ...(command.keyId ? { keyId: command.keyId } : {}),
  };
  if (state.status === 'none') return [opened];
  // A retried create (same caller-chosen id): the same escrow again decides nothing new.
  const same =
    state.creatorId === opened.creatorId &&
    state.counterpartyId === opened.counterpartyId &&
    state.amountMicros === opened.amountMicros &&
    state.description === opened.description &&
    state.timeoutMs === opened.timeoutMs &&
    (state.jobId ?? null) === (command.jobId ?? null) &&
    (state.evaluatorId ?? null) === (opened.evaluatorId ?? null) &&
    (state.evaluatorFeeBps ?? 0) === (opened.evaluatorFeeBps ?? 0) &&
    sameMilestoneTerms(state.milestones, command.milestones);
  if (same) return [];
  throw new DomainError(
    escrowErrors.escrowIdReused,
    `escrow ${command.escrowId} already exists with other terms`,
  );
}

function sameMilestoneTerms(
  milestones: readonly MilestoneTerms[] | undefined,
  terms: readonly MilestoneTerms[] | undefined,
): boolean {
  if (!milestones || !terms) return !milestones && !terms;
  return (
    milestones.length === terms.length &&
    milestones.every(
      (milestone, index) =>
        milestone.description === terms[index]!.description &&
        milestone.amountMicros === terms[index]!.amountMicros,
    )
  );
}

function decideHoldOutcome(
  command: Extract<EscrowCommand, { kind: 'record_hold' }>,
  state: EscrowState,
): EscrowEvent[] {
  if (state.status === 'none') throw new Error('a hold outcome for an escrow that was never opened');
  // Only the first outcome counts; a later one (a retried hold racing the recovery sweep) is
  // ignored here and reconciled by the caller (a hold placed after a rejection is voided).
  if (state.status !== 'opened') return [];
  if (command.outcome === 'held')
    return [
      { type: 'funded', escrowId: state.escrowId, holdId: state.escrowId, amountMicros: state.amountMicros },
    ];
  return [
    {
      type: 'rejected',
      escrowId: state.escrowId,
      code: command.code,
      message: command.message,
      availableMicros: command.availableMicros,
      ...(command.details ? { details: command.details } : {}),
    },
  ];
}

function decideExpire(state: EscrowState): EscrowEvent[] {
  if (state.status === 'funded' && hasMilestones(state))
    return decideMilestonesExpire(state, (amountMicros) =>
      releasePayout({ ...state, amountMicros }, { evaluatorFee: false }),
    );
  if (state.status === 'funded')
    return [
      { type: 'refunded', escrowId: state.escrowId, trigger: 'timeout', amountMicros: state.amountMicros },
    ];
  if (state.status === 'completed') {
    return [
      {
        type: 'released',
        escrowId: state.escrowId,
        by: null,
        trigger: 'timeout',
        amountMicros: state.amountMicros,
        // The evaluator did not act before the deadline: no fee (docs/adr/0016).
        payout: releasePayout(state, { evaluatorFee: false }),
      },
    ];
  }
  // Disputed escrows wait for an operator; settled ones have nothing left to do.
  return [];
}

type Action = Extract<EscrowCommand, { kind: 'complete' | 'release' | 'decline' | 'dispute' }>;
type Escrow = Exclude<EscrowState, { status: 'none' }>;

function decideAction(command: Action, escrow: Escrow): EscrowEvent[] {
  // Role first, status second: an outsider learns nothing about the escrow's state.
  requireRole(command, escrow);
  switch (command.kind) {
    case 'complete': {
      const milestone = requireMilestoneChoice(escrow, command.milestone);
      requireStatus(escrow, ['funded']);
      requireSummarySize(command.resultSummary);
      const deliverable = parseDeliverable(command.deliverable);
      if (milestone !== undefined && hasMilestones(escrow))
        return decideMilestoneComplete(
          escrow,
          milestone,
          command.actorId,
          command.resultSummary,
          deliverable,
        );
      return [
        {
          type: 'completed',
          escrowId: escrow.escrowId,
          by: command.actorId,
          resultSummary: command.resultSummary,
          ...(deliverable ? { deliverable } : {}),
        },
      ];
    }
    case 'release': {
      requireMarketReleaseOfRace(command, escrow);
      const milestone = requireMilestoneChoice(escrow, command.milestone);
      requireStatus(escrow, ['funded', 'completed']);
      const byEvaluator = escrow.evaluatorId !== undefined;
      if (milestone !== undefined && hasMilestones(escrow))
        return decideMilestoneRelease(
          escrow,
          milestone,
          command.actorId,
          byEvaluator ? 'evaluator' : 'creator',
          (amountMicros) => releasePayout({ ...escrow, amountMicros }, { evaluatorFee: byEvaluator }),
        );
      return [
        {
          type: 'released',
          escrowId: escrow.escrowId,
          by: command.actorId,
          trigger: byEvaluator ? 'evaluator' : 'creator',
          amountMicros: escrow.amountMicros,
          payout: releasePayout(escrow, { evaluatorFee: byEvaluator }),
        },
      ];
    }
    case 'decline':
      requireStatus(escrow, ['funded']);
      requireNothingReleased(escrow);
      return [
        {
          type: 'declined',
          escrowId: escrow.escrowId,
          by: command.actorId,
          amountMicros: escrow.amountMicros,
        },
      ];
    case 'dispute':
      requireStatus(escrow, ['funded', 'completed']);
      requireNothingReleased(escrow);
      return [{ type: 'disputed', escrowId: escrow.escrowId, by: command.actorId, reason: command.reason }];
  }
}

/**
 * The market gives a job escrow's money back in full (no commission): the job was cancelled,
 * its award failed half-way, or it lost a race. Only for the job the escrow was opened for; a
 * worker who completed is paid, except the loser of a race (only the first completion pays).
 * Cancelling again decides nothing: the money is already back.
 */
function decideCancel(command: Extract<EscrowCommand, { kind: 'cancel' }>, escrow: Escrow): EscrowEvent[] {
  if (!escrow.jobId || escrow.jobId !== command.jobId)
    throw new DomainError(
      ErrorCode.forbidden,
      'only the market may cancel an escrow, and only one opened for its job',
    );
  if (escrow.status === 'refunded') return [];
  const cancellable: EscrowStatus[] =
    command.reason === 'race_lost' && escrow.race ? ['funded', 'completed'] : ['funded'];
  requireStatus(escrow, cancellable);
  return [
    {
      type: 'cancelled',
      escrowId: escrow.escrowId,
      jobId: command.jobId,
      reason: command.reason,
      amountMicros: escrow.amountMicros,
    },
  ];
}

/**
 * The evaluator sends delivered work back (the escrow is funded again, the deadline unchanged,
 * and the counterparty may complete again) or, with `refund`, gives the money back in full.
 * Only the evaluator; an escrow without one has nobody who may reject it.
 */
function decideReject(command: Extract<EscrowCommand, { kind: 'reject' }>, escrow: Escrow): EscrowEvent[] {
  requireEvaluator(command.actorId, escrow);
  const reason = command.reason.trim();
  if ([...reason].length < 1 || [...reason].length > ESCROW_LIMITS.maxRejectReasonChars)
    throw new DomainError(
      escrowErrors.invalidRejectReason,
      `reason must have 1 to ${ESCROW_LIMITS.maxRejectReasonChars} characters`,
    );
  const base = { escrowId: escrow.escrowId, by: command.actorId, reason };
  if (command.refund) {
    requireStatus(escrow, ['funded', 'completed']);
    requireNothingReleased(escrow);
    return [{ type: 'evaluator_refunded', ...base, amountMicros: escrow.amountMicros }];
  }
  // Only delivered work can be sent back; before that there is nothing to reject.
  requireStatus(escrow, ['completed']);
  return [{ type: 'evaluation_rejected', ...base }];
}

/**
 * A cancel by agreement: the creator's request and the counterparty's consent, in either order.
 * The first half is recorded; the second refunds in full, no commission. Neither half alone
 * moves money, so the creator cannot claw back funds the counterparty is working for. Asking
 * twice decides nothing new. The market's job escrows are cancelled through their job.
 */
function decideCancelByAgreement(
  command: Extract<EscrowCommand, { kind: 'request_cancel' | 'consent_cancel' }>,
  escrow: Escrow,
): EscrowEvent[] {
  const byCreator = command.kind === 'request_cancel';
  const party = byCreator ? escrow.creatorId : escrow.counterpartyId;
  if (command.actorId !== party)
    throw new DomainError(
      ErrorCode.forbidden,
      byCreator
        ? 'only the creator may ask to cancel this escrow'
        : 'only the counterparty may consent to cancel this escrow',
    );
  if (escrow.jobId)
    throw new DomainError(
      ErrorCode.forbidden,
      `this escrow pays for job ${escrow.jobId}: cancel it through the job (POST /jobs/${escrow.jobId}/cancel)`,
    );
  requireStatus(escrow, ['funded', 'completed', 'disputed']);
  requireNothingReleased(escrow);
  const already = byCreator ? escrow.cancelRequested : escrow.cancelConsented;
  if (already) return [];
  const other = byCreator ? escrow.cancelConsented : escrow.cancelRequested;
  if (other)
    return [
      {
        type: 'mutually_cancelled',
        escrowId: escrow.escrowId,
        by: command.actorId,
        amountMicros: escrow.amountMicros,
      },
    ];
  return [
    {
      type: byCreator ? 'cancel_requested' : 'cancel_consented',
      escrowId: escrow.escrowId,
      by: command.actorId,
    },
  ];
}

/**
 * Whole-escrow refunds and disputes settle the whole hold; once a milestone was paid (a part of
 * the hold posted) they no longer fit: the rest settles milestone by milestone or at the deadline.
 */
function requireNothingReleased(escrow: Escrow): void {
  if (anyMilestoneReleased(escrow))
    throw new DomainError(
      escrowErrors.invalidStatus,
      'a milestone of this escrow was already released: release the others, or let the deadline settle them',
      { status: escrow.status },
    );
}

/** A race's escrows are released only by the market (for the race's winner), never directly. */
function requireMarketReleaseOfRace(command: Extract<Action, { kind: 'release' }>, escrow: Escrow): void {
  if (escrow.race && command.jobId !== escrow.jobId) {
    throw new DomainError(
      ErrorCode.forbidden,
      `this escrow is one of a race: release the winner with POST /jobs/${escrow.jobId}/release`,
    );
  }
}

function decideResolve(command: Extract<EscrowCommand, { kind: 'resolve' }>, escrow: Escrow): EscrowEvent[] {
  requireStatus(escrow, ['disputed']);
  const shareBps = shareOf(command);
  const payout = command.outcome === 'refund' ? null : splitPayout(escrow, shareBps);
  return [
    {
      type: 'resolved',
      escrowId: escrow.escrowId,
      outcome: command.outcome,
      counterpartyShareBps: shareBps,
      amountMicros: escrow.amountMicros,
      payout,
    },
  ];
}

function shareOf(command: Extract<EscrowCommand, { kind: 'resolve' }>): number {
  if (command.outcome === 'release') return 10_000;
  if (command.outcome === 'refund') return 0;
  const share = command.counterpartyShareBps;
  if (share === null || !Number.isSafeInteger(share) || share < 0 || share > 10_000) {
    throw new DomainError(
      escrowErrors.invalidResolution,
      'a split needs counterparty_share_bps between 0 and 10000',
    );
  }
  return share;
}

/**
 * A full release: the counterparty gets amount - commission - evaluator fee; the commission is
 * shared between house and referrer. The fee (floor of its basis points of the amount) is paid
 * only when the evaluator itself released (`evaluatorFee`), never on a deadline or a resolution.
 */
export function releasePayout(
  escrow: Pick<
    EscrowFacts,
    'amountMicros' | 'commissionBps' | 'referrerId' | 'evaluatorId' | 'evaluatorFeeBps'
  >,
  options: { evaluatorFee: boolean } = { evaluatorFee: false },
): Payout {
  const split = releaseSplit(escrow.amountMicros, escrow.commissionBps, escrow.referrerId !== null);
  const evaluatorMicros =
    escrow.evaluatorId !== undefined && options.evaluatorFee
      ? basisPointsOf(escrow.amountMicros, escrow.evaluatorFeeBps ?? 0)
      : 0n;
  return {
    counterpartyMicros: split.counterpartyMicros - evaluatorMicros,
    commissionMicros: split.commissionMicros,
    houseMicros: split.houseMicros,
    referrerMicros: split.referrerMicros,
    referrerId: escrow.referrerId,
    creatorMicros: 0n,
    ...(escrow.evaluatorId !== undefined ? { evaluatorMicros, evaluatorId: escrow.evaluatorId } : {}),
  };
}

/**
 * An operator's split: `shareBps` of the amount is released to the counterparty, with the
 * commission taken on that released part only; the rest goes back to the creator.
 */
export function splitPayout(
  escrow: Pick<
    EscrowFacts,
    'amountMicros' | 'commissionBps' | 'referrerId' | 'evaluatorId' | 'evaluatorFeeBps'
  >,
  shareBps: number,
): Payout {
  const [releasedMicros, returnedMicros] = splitByBasisPoints(escrow.amountMicros, [
    shareBps,
    Number(BPS_PER_WHOLE) - shareBps,
  ]);
  const released = releasePayout({ ...escrow, amountMicros: releasedMicros! });
  return { ...released, creatorMicros: returnedMicros! };
}

/** What create promises: commission and net on a full release. */
export function promisedCommission(amountMicros: bigint, commissionBps: number): bigint {
  return basisPointsOf(amountMicros, commissionBps);
}

function requireEscrow(state: EscrowState): Escrow {
  // A rejected escrow never existed for the API: its hold was refused.
  if (state.status === 'none' || state.status === 'rejected')
    throw new DomainError(ErrorCode.notFound, 'no such escrow');
  return state;
}

function requireRole(command: Action, escrow: Escrow): void {
  // With an evaluator, the evaluator alone releases; the creator can still dispute (docs/adr/0016).
  if (command.kind === 'release' && escrow.evaluatorId !== undefined) {
    requireEvaluator(command.actorId, escrow);
    return;
  }
  const allowed =
    command.kind === 'release'
      ? command.actorId === escrow.creatorId
      : command.kind === 'dispute'
        ? command.actorId === escrow.creatorId || command.actorId === escrow.counterpartyId
        : command.actorId === escrow.counterpartyId;
  if (!allowed) throw new DomainError(ErrorCode.forbidden, FORBIDDEN_MESSAGE);
}

function requireEvaluator(actorId: string, escrow: Escrow): void {
  if (escrow.evaluatorId === undefined || actorId !== escrow.evaluatorId)
    throw new DomainError(
      escrowErrors.notEvaluator,
      escrow.evaluatorId === undefined
        ? 'this escrow has no evaluator: nobody may reject it'
        : 'only the evaluator of this escrow may release or reject it',
    );
}

function requireStatus(escrow: Escrow, allowed: readonly EscrowStatus[]): void {
  if (!allowed.includes(escrow.status)) {
    throw new DomainError(
      escrowErrors.invalidStatus,
      `escrow is ${escrow.status}; this needs ${allowed.join(' or ')}`,
      { status: escrow.status },
    );
  }
}

function requireSummarySize(summary: string | null): void {
  if (summary !== null && Buffer.byteLength(summary, 'utf8') > ESCROW_LIMITS.maxResultSummaryBytes) {
    throw new DomainError(
      escrowErrors.invalidResultSummary,
      `result_summary must be at most ${ESCROW_LIMITS.maxResultSummaryBytes} bytes`,
    );
  }
}

/** Invariant: a payout never creates or loses a micro-dollar, and no part is negative. */
function assertConserved(event: EscrowEvent): void {
  if (
    event.type !== 'released' &&
    event.type !== 'resolved' &&
    event.type !== 'milestone_released' &&
    event.type !== 'milestones_settled'
  )
    return;
  const payout = event.payout;
  if (!payout) return;
  const parts = [
    payout.counterpartyMicros,
    payout.houseMicros,
    payout.referrerMicros,
    payout.creatorMicros,
    payout.evaluatorMicros ?? 0n,
  ];
  const total = parts.reduce((sum, part) => sum + part, 0n);
  if (
    total !== event.amountMicros ||
    parts.some((part) => part < 0n) ||
    payout.houseMicros + payout.referrerMicros !== payout.commissionMicros
  ) {
    throw new Error(`escrow ${event.escrowId}: payout does not conserve ${event.amountMicros} micros`);
  }
  if (payout.referrerMicros > 0n && payout.referrerId === null)
    throw new Error(`escrow ${event.escrowId}: referral share without a referrer`);
  if ((payout.evaluatorMicros ?? 0n) > 0n && payout.evaluatorId === undefined)
    throw new Error(`escrow ${event.escrowId}: evaluator fee without an evaluator`);
}

export function evolve(state: EscrowState, event: EscrowEvent): EscrowState {
  if (event.type === 'opened') {
    const { type: _type, milestones, ...facts } = event;
    return {
      status: 'opened',
      ...facts,
      resultSummary: null,
      payout: null,
      deliverable: null,
      rejectReason: null,
      cancelRequested: false,
      cancelConsented: false,
      ...(milestones ? { milestones: openMilestones(milestones) } : {}),
    };
  }
  if (state.status === 'none') throw new Error(`escrow event ${event.type} before opened`);
  switch (event.type) {
    case 'funded':
      return { ...state, status: 'funded' };
    case 'rejected':
      return { ...state, status: 'rejected' };
    case 'completed':
      return {
        ...state,
        status: 'completed',
        resultSummary: event.resultSummary,
        deliverable: event.deliverable ?? null,
      };
    case 'disputed':
      return { ...state, status: 'disputed' };
    case 'evaluation_rejected':
      return { ...state, status: 'funded', rejectReason: event.reason };
    case 'evaluator_refunded':
      return { ...state, status: 'refunded', rejectReason: event.reason };
    case 'cancel_requested':
      return { ...state, cancelRequested: true };
    case 'cancel_consented':
      return { ...state, cancelConsented: true };
    case 'mutually_cancelled':
      return { ...state, status: 'refunded', cancelRequested: true, cancelConsented: true };
    case 'released':
      return { ...state, status: 'released', payout: event.payout };
    case 'refunded':
    case 'declined':
    case 'cancelled':
      return { ...state, status: 'refunded' };
    case 'resolved':
      return { ...state, status: statusAfterResolution(event.outcome), payout: event.payout };
    case 'milestone_completed':
    case 'milestone_released':
    case 'milestones_refunded':
      return { ...state, milestones: evolveMilestones(state.milestones ?? [], event) };
    case 'milestones_settled':
      return { ...state, status: event.outcome, payout: event.payout };
  }
}

/**
 * When a funded escrow times out: the time it was funded plus its timeout. The one place the
 * deadline is computed (the read model stores it as `auto_release_at` and as the sweeper's
 * deadline row; the sweeper only compares it with the database's clock).
 */
export function deadlineOf(fundedAt: Date, timeoutMs: number): Date {
  return new Date(fundedAt.getTime() + timeoutMs);
}

/**
 * Whether the escrow's deadline is running: funded (work pending) or completed (awaiting the
 * release). Exactly then `expire` decides something; disputed escrows wait for an operator.
 */
export function deadlineRuns(state: EscrowState): boolean {
  return state.status === 'funded' || state.status === 'completed';
}

export function statusAfterResolution(outcome: ResolutionOutcome): EscrowStatus {
  return outcome === 'release' ? 'released' : outcome === 'refund' ? 'refunded' : 'split';
}

/** How the casino carries out a settling event: post these splits, or void the hold. */
export type LedgerInstruction = { kind: 'post'; payout: Payout } | { kind: 'void' };

export function ledgerInstructionOf(event: EscrowEvent): LedgerInstruction | null {
  switch (event.type) {
    case 'released':
      return { kind: 'post', payout: event.payout };
    case 'refunded':
    case 'declined':
    case 'cancelled':
    case 'evaluator_refunded':
    case 'mutually_cancelled':
      return { kind: 'void' };
    case 'resolved':
      return event.payout ? { kind: 'post', payout: event.payout } : { kind: 'void' };
    default:
      return null;
  }
}

/** Who did it, for the participant's history: an agent id, `system` or `operator`. */
export function actorOf(event: EscrowEvent): string {
  switch (event.type) {
    case 'opened':
      return event.creatorId;
    case 'completed':
    case 'disputed':
    case 'declined':
    case 'evaluation_rejected':
    case 'evaluator_refunded':
    case 'cancel_requested':
    case 'cancel_consented':
    case 'mutually_cancelled':
      return event.by;
    case 'released':
    case 'milestone_released':
      return event.by ?? 'system';
    case 'milestone_completed':
      return event.by;
    case 'resolved':
      return 'operator';
    default:
      return 'system';
  }
}

/** One destination of a casino post, as the casino contract takes it. */
export interface LedgerSplit {
  to: string;
  amountMicros: bigint;
  reason: 'payout' | 'commission' | 'referral' | 'refund' | 'evaluator_fee';
}

/**
 * The casino splits of a payout: worker, house, referrer, the creator's returned part (a split
 * resolution) and the evaluator's fee, all in the one post of the hold. Zero parts are dropped; the rest sum to the escrow amount exactly.
 */
export function payoutSplits(
  escrow: Pick<EscrowFacts, 'creatorId' | 'counterpartyId'>,
  payout: Payout,
): LedgerSplit[] {
  const splits: LedgerSplit[] = [
    { to: escrow.counterpartyId, amountMicros: payout.counterpartyMicros, reason: 'payout' },
    { to: HOUSE_REVENUE_ACCOUNT, amountMicros: payout.houseMicros, reason: 'commission' },
    { to: payout.referrerId ?? '', amountMicros: payout.referrerMicros, reason: 'referral' },
    { to: escrow.creatorId, amountMicros: payout.creatorMicros, reason: 'refund' },
    { to: payout.evaluatorId ?? '', amountMicros: payout.evaluatorMicros ?? 0n, reason: 'evaluator_fee' },
  ];
  return splits.filter((split) => split.amountMicros > 0n);
}

/**
 * Hours as a person reads them: `720`, or `0.016667 (60 s)` for a bound that is not a whole
 * number of hours (a raw division printed 0.016666666666666666).
 */
export function describeHours(durationMs: number): string {
  const hours = Number((durationMs / 3_600_000).toFixed(6));
  return durationMs % 3_600_000 === 0 ? String(hours) : `${hours} (${Math.round(durationMs / 1000)} s)`;
}
