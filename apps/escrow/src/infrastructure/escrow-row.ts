import type { Deliverable, EscrowPayoutView, EscrowStatus, EscrowView } from '@pf/contracts';
import {
  promisedCommission,
  statusAfterResolution,
  type EscrowEvent,
  type EscrowState,
} from '../domain/escrow.js';
import { decodePayout, encodeEscrowEvent, encodePayout } from './escrow-codec.js';
import {
  milestonePatches,
  milestonesFromStored,
  milestoneViews,
  patchMilestones,
  storedMilestones,
  type StoredMilestone,
} from './milestone-row.js';

/**
 * An `escrows` row of the inline projection, as the queries read it. Commands lock the row and
 * take the escrow's state from it (the projection is written in the same transaction as every
 * append, so it is the stream's fold — checked against the fold in the integration tests);
 * `evolveRow` gives the row a command leaves behind without reading it again.
 */
export interface EscrowRow {
  escrow_id: string;
  status: EscrowStatus;
  creator_id: string;
  counterparty_id: string;
  amount_micros: string;
  commission_bps: number;
  referrer_id: string | null;
  description: string;
  result_summary: string | null;
  dispute_reason: string | null;
  /** The `rejected` event's data (code, message, availableMicros) when the hold was refused. */
  rejection: Record<string, unknown> | null;
  timeout_ms: string;
  created_at: Date;
  auto_release_at: Date | null;
  completed_at: Date | null;
  released_at: Date | null;
  refunded_at: Date | null;
  disputed_at: Date | null;
  resolved_at: Date | null;
  payout: EscrowPayoutView | null;
  version: number;
  /** The market's job (null for a direct escrow) and whether the escrow is one of a race. */
  job_id: string | null;
  race: boolean;
  /** docs/adr/0016: the evaluator and its fee, the last deliverable, rejection and cancel halves. */
  evaluator_id: string | null;
  evaluator_fee_bps: number;
  deliverable: Deliverable | null;
  reject_reason: string | null;
  rejected_at: Date | null;
  cancel_requested_at: Date | null;
  cancel_consented_at: Date | null;
  /** docs/adr/0017: the milestones and their progress; null for an escrow without. */
  milestones: StoredMilestone[] | null;
}

export const ESCROW_ROW_COLUMNS = `escrow_id, status, creator_id, counterparty_id, amount_micros::text AS amount_micros, commission_bps, referrer_id,
  description, result_summary, dispute_reason, rejection, timeout_ms::text AS timeout_ms, created_at, auto_release_at, completed_at, released_at,
  refunded_at, disputed_at, resolved_at, payout, version, job_id, race, evaluator_id, evaluator_fee_bps, deliverable, reject_reason,
  rejected_at, cancel_requested_at, cancel_consented_at, milestones`;

export function stateFromRow(row: EscrowRow): EscrowState {
  return {
    status: row.status,
    escrowId: row.escrow_id,
    creatorId: row.creator_id,
    counterpartyId: row.counterparty_id,
    amountMicros: BigInt(row.amount_micros),
    commissionBps: row.commission_bps,
    referrerId: row.referrer_id,
    description: row.description,
    timeoutMs: Number(row.timeout_ms),
    resultSummary: row.result_summary,
    payout: row.payout ? decodePayout(row.payout) : null,
    ...(row.job_id ? { jobId: row.job_id, race: row.race } : {}),
    ...(row.evaluator_id ? { evaluatorId: row.evaluator_id, evaluatorFeeBps: row.evaluator_fee_bps } : {}),
    deliverable: row.deliverable,
    rejectReason: row.reject_reason,
    cancelRequested: row.cancel_requested_at !== null,
    cancelConsented: row.cancel_consented_at !== null,
    ...(row.milestones ? { milestones: milestonesFromStored(row.milestones) } : {}),
  };
}

/** The row after `event`, recorded at `at` (version `version`): the projection's update, in memory. */
export function evolveRow(
  row: EscrowRow | undefined,
  event: EscrowEvent,
  at: Date,
  version: number,
): EscrowRow {
  if (event.type === 'opened') {
    return {
      escrow_id: event.escrowId,
      status: 'opened',
      creator_id: event.creatorId,
      counterparty_id: event.counterpartyId,
      amount_micros: event.amountMicros.toString(),
      commission_bps: event.commissionBps,
      referrer_id: event.referrerId,
      description: event.description,
      result_summary: null,
      dispute_reason: null,
      rejection: null,
      timeout_ms: String(event.timeoutMs),
      created_at: at,
      auto_release_at: null,
      completed_at: null,
      released_at: null,
      refunded_at: null,
      disputed_at: null,
      resolved_at: null,
      payout: null,
      version,
      job_id: event.jobId ?? null,
      race: event.race === true,
      evaluator_id: event.evaluatorId ?? null,
      evaluator_fee_bps: event.evaluatorFeeBps ?? 0,
      deliverable: null,
      reject_reason: null,
      rejected_at: null,
      cancel_requested_at: null,
      cancel_consented_at: null,
      milestones: event.milestones ? storedMilestones(event.milestones) : null,
    };
  }
  if (!row) throw new Error(`escrow event ${event.type} without a row`);
  const next = { ...row, version };
  switch (event.type) {
    case 'funded':
      return { ...next, status: 'funded', auto_release_at: new Date(at.getTime() + Number(row.timeout_ms)) };
    case 'rejected':
      return { ...next, status: 'rejected', rejection: encodeEscrowEvent(event).data };
    case 'completed':
      return {
        ...next,
        status: 'completed',
        completed_at: at,
        result_summary: event.resultSummary,
        deliverable: event.deliverable ?? null,
      };
    case 'disputed':
      return { ...next, status: 'disputed', disputed_at: at, dispute_reason: event.reason };
    case 'released':
      return {
        ...next,
        status: 'released',
        released_at: at,
        payout: encodePayout(event.payout) as unknown as EscrowPayoutView,
      };
    case 'refunded':
    case 'declined':
    case 'cancelled':
      return { ...next, status: 'refunded', refunded_at: at };
    case 'evaluation_rejected':
      return { ...next, status: 'funded', reject_reason: event.reason, rejected_at: at };
    case 'evaluator_refunded':
      return { ...next, status: 'refunded', refunded_at: at, reject_reason: event.reason, rejected_at: at };
    case 'cancel_requested':
      return { ...next, cancel_requested_at: at };
    case 'cancel_consented':
      return { ...next, cancel_consented_at: at };
    case 'mutually_cancelled':
      return {
        ...next,
        status: 'refunded',
        refunded_at: at,
        cancel_requested_at: row.cancel_requested_at ?? at,
        cancel_consented_at: row.cancel_consented_at ?? at,
      };
    case 'resolved': {
      const status = statusAfterResolution(event.outcome);
      const payout = event.payout ? (encodePayout(event.payout) as unknown as EscrowPayoutView) : null;
      return status === 'refunded'
        ? { ...next, status, resolved_at: at, refunded_at: at, payout }
        : { ...next, status, resolved_at: at, released_at: at, payout };
    }
    case 'milestone_completed':
    case 'milestone_released':
    case 'milestones_refunded':
      return { ...next, milestones: patchMilestones(row.milestones ?? [], milestonePatches(event, at)) };
    case 'milestones_settled': {
      const payout = event.payout ? (encodePayout(event.payout) as unknown as EscrowPayoutView) : null;
      return event.outcome === 'released'
        ? { ...next, status: 'released', released_at: at, payout }
        : { ...next, status: 'refunded', refunded_at: at, payout };
    }
  }
}

export function rowToView(row: EscrowRow): EscrowView {
  const amountMicros = BigInt(row.amount_micros);
  const commissionMicros = promisedCommission(amountMicros, row.commission_bps);
  return {
    escrowId: row.escrow_id,
    status: row.status,
    creatorId: row.creator_id,
    counterpartyId: row.counterparty_id,
    amountMicros: row.amount_micros,
    commissionBps: row.commission_bps,
    commissionMicros: commissionMicros.toString(),
    netToCounterpartyMicros: (amountMicros - commissionMicros).toString(),
    description: row.description,
    resultSummary: row.result_summary,
    disputeReason: row.dispute_reason,
    timeoutMs: Number(row.timeout_ms),
    createdAt: row.created_at.toISOString(),
    autoReleaseAt: iso(row.auto_release_at),
    completedAt: iso(row.completed_at),
    releasedAt: iso(row.released_at),
    refundedAt: iso(row.refunded_at),
    disputedAt: iso(row.disputed_at),
    resolvedAt: iso(row.resolved_at),
    payout: row.payout,
    evaluatorId: row.evaluator_id,
    evaluatorFeeBps: row.evaluator_fee_bps,
    deliverable: row.deliverable,
    rejectReason: row.reject_reason,
    rejectedAt: iso(row.rejected_at),
    cancelRequestedAt: iso(row.cancel_requested_at),
    cancelConsentedAt: iso(row.cancel_consented_at),
    ...(row.milestones ? { milestones: milestoneViews(row.milestones) } : {}),
  };
}

function iso(value: Date | null): string | null {
  return value ? value.toISOString() : null;
}
