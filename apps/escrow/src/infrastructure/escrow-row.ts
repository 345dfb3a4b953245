import type { Deliverable, EscrowPayoutView, EscrowStatus, EscrowView } from '@pf/contracts';
import {
  deadlineOf,
  deadlineRuns,
  escrowDecider,
  promisedCommission,
  type EscrowEvent,
  type EscrowState,
} from '../domain/escrow.js';
import { decodePayout, encodeEscrowEvent, encodePayout } from './escrow-codec.js';
import {
  milestoneMetaOf,
  milestonesFromStored,
  milestoneViews,
  stampMilestones,
  storedMilestonesOf,
  type MilestoneMeta,
  type StoredMilestone,
} from './milestone-row.js';

/**
 * An `escrows` row of the inline projection. Commands lock the row and take the escrow's state
 * from it (the projection is written in the same transaction as every append, so it is the
 * stream's fold — checked against the fold in the integration tests).
 *
 * The escrow's state machine exists once, in the decider's `evolve`: the row is `rowOf` the
 * decider's state plus what the read model keeps beside it (when things happened, the dispute
 * reason and the hold's refusal: `EscrowRowMeta`). The projection, the command's reply and a
 * rebuild all build the row through `evolveRecord` + `rowOf`, never per event in SQL.
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
  funded_at: Date | null;
  /** `deadlineOf(funded_at, timeout_ms)`: when the escrow times out. */
  auto_release_at: Date | null;
  completed_at: Date | null;
  released_at: Date | null;
  refunded_at: Date | null;
  disputed_at: Date | null;
  resolved_at: Date | null;
  payout: EscrowPayoutView | null;
  /** The commission of the payout (0 until one is decided). */
  commission_taken_micros: string;
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

/** Every column of the row but `position` (the log position of its last event, written only). */
export const ESCROW_ROW_COLUMNS = `escrow_id, status, creator_id, counterparty_id, amount_micros::text AS amount_micros, commission_bps, referrer_id,
  description, result_summary, dispute_reason, rejection, timeout_ms::text AS timeout_ms, created_at, funded_at, auto_release_at, completed_at, released_at,
  refunded_at, disputed_at, resolved_at, payout, commission_taken_micros::text AS commission_taken_micros, version, job_id, race, evaluator_id,
  evaluator_fee_bps, deliverable, reject_reason, rejected_at, cancel_requested_at, cancel_consented_at, milestones`;

/** What the read model keeps beside the decider's state: times (the events' recorded times) and two texts. */
export interface EscrowRowMeta {
  createdAt: Date;
  fundedAt: Date | null;
  completedAt: Date | null;
  disputedAt: Date | null;
  /** When the escrow settled: `released_at`, or `refunded_at` for a refunded one. */
  settledAt: Date | null;
  resolvedAt: Date | null;
  rejectedAt: Date | null;
  cancelRequestedAt: Date | null;
  cancelConsentedAt: Date | null;
  disputeReason: string | null;
  rejection: Record<string, unknown> | null;
  milestones: MilestoneMeta[] | null;
  /** The stream version of the last event. */
  version: number;
}

export type Escrow = Exclude<EscrowState, { status: 'none' }>;

/** An escrow as the read model holds it: the decider's state and the meta beside it. */
export interface EscrowRecord {
  state: Escrow;
  meta: EscrowRowMeta;
}

export function stateFromRow(row: EscrowRow): Escrow {
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

/** The record a row holds (the inverse of `rowOf`). */
export function recordOf(row: EscrowRow): EscrowRecord {
  return {
    state: stateFromRow(row),
    meta: {
      createdAt: row.created_at,
      fundedAt: row.funded_at,
      completedAt: row.completed_at,
      disputedAt: row.disputed_at,
      settledAt: row.status === 'refunded' ? row.refunded_at : row.released_at,
      resolvedAt: row.resolved_at,
      rejectedAt: row.rejected_at,
      cancelRequestedAt: row.cancel_requested_at,
      cancelConsentedAt: row.cancel_consented_at,
      disputeReason: row.dispute_reason,
      rejection: row.rejection,
      milestones: row.milestones ? row.milestones.map(milestoneMetaOf) : null,
      version: row.version,
    },
  };
}

/**
 * The record after `event`, recorded at `at` as version `version`: the state by the decider's
 * own `evolve`; the meta only notes when the event happened (no status logic here).
 */
export function evolveRecord(
  record: EscrowRecord | undefined,
  event: EscrowEvent,
  at: Date,
  version: number,
): EscrowRecord {
  const state = escrowDecider.evolve(record?.state ?? escrowDecider.initialState(), event);
  if (state.status === 'none') throw new Error(`escrow event ${event.type} left no escrow`);
  if (event.type === 'opened') {
    return {
      state,
      meta: {
        createdAt: at,
        fundedAt: null,
        completedAt: null,
        disputedAt: null,
        settledAt: null,
        resolvedAt: null,
        rejectedAt: null,
        cancelRequestedAt: null,
        cancelConsentedAt: null,
        disputeReason: null,
        rejection: null,
        milestones: event.milestones ? event.milestones.map(() => milestoneMetaOf()) : null,
        version,
      },
    };
  }
  if (!record) throw new Error(`escrow event ${event.type} without a row`);
  return { state, meta: stamp({ ...record.meta, version }, event, at) };
}

function stamp(meta: EscrowRowMeta, event: EscrowEvent, at: Date): EscrowRowMeta {
  switch (event.type) {
    case 'opened':
      return meta;
    case 'funded':
      return { ...meta, fundedAt: at };
    case 'rejected':
      return { ...meta, rejection: encodeEscrowEvent(event).data };
    case 'completed':
      return { ...meta, completedAt: at };
    case 'disputed':
      return { ...meta, disputedAt: at, disputeReason: event.reason };
    case 'evaluation_rejected':
      return { ...meta, rejectedAt: at };
    case 'evaluator_refunded':
      return { ...meta, rejectedAt: at, settledAt: at };
    case 'cancel_requested':
      return { ...meta, cancelRequestedAt: at };
    case 'cancel_consented':
      return { ...meta, cancelConsentedAt: at };
    case 'mutually_cancelled':
      // The second half's time is the settlement's; the first half's was recorded when it came.
      return {
        ...meta,
        settledAt: at,
        cancelRequestedAt: meta.cancelRequestedAt ?? at,
        cancelConsentedAt: meta.cancelConsentedAt ?? at,
      };
    case 'resolved':
      return { ...meta, resolvedAt: at, settledAt: at };
    case 'released':
    case 'refunded':
    case 'declined':
    case 'cancelled':
    case 'milestones_settled':
      return { ...meta, settledAt: at };
    case 'milestone_completed':
    case 'milestone_released':
    case 'milestones_refunded':
      return { ...meta, milestones: stampMilestones(meta.milestones ?? [], event, at) };
  }
}

/** The one mapping from the decider's state (and the meta) to the row. */
export function rowOf({ state, meta }: EscrowRecord): EscrowRow {
  const refunded = state.status === 'refunded';
  return {
    escrow_id: state.escrowId,
    status: state.status,
    creator_id: state.creatorId,
    counterparty_id: state.counterpartyId,
    amount_micros: state.amountMicros.toString(),
    commission_bps: state.commissionBps,
    referrer_id: state.referrerId,
    description: state.description,
    result_summary: state.resultSummary,
    dispute_reason: meta.disputeReason,
    rejection: meta.rejection,
    timeout_ms: String(state.timeoutMs),
    created_at: meta.createdAt,
    funded_at: meta.fundedAt,
    auto_release_at: meta.fundedAt ? deadlineOf(meta.fundedAt, state.timeoutMs) : null,
    completed_at: meta.completedAt,
    released_at: refunded ? null : meta.settledAt,
    refunded_at: refunded ? meta.settledAt : null,
    disputed_at: meta.disputedAt,
    resolved_at: meta.resolvedAt,
    payout: state.payout ? (encodePayout(state.payout) as unknown as EscrowPayoutView) : null,
    commission_taken_micros: (state.payout?.commissionMicros ?? 0n).toString(),
    version: meta.version,
    job_id: state.jobId ?? null,
    race: state.race === true,
    evaluator_id: state.evaluatorId ?? null,
    evaluator_fee_bps: state.evaluatorFeeBps ?? 0,
    deliverable: state.deliverable,
    reject_reason: state.rejectReason,
    rejected_at: meta.rejectedAt,
    cancel_requested_at: meta.cancelRequestedAt,
    cancel_consented_at: meta.cancelConsentedAt,
    milestones: state.milestones ? storedMilestonesOf(state.milestones, meta.milestones ?? []) : null,
  };
}

/** The row's deadline (the sweeper's `deadlines` row): while it runs, its `auto_release_at`. */
export function dueAtOf(row: EscrowRow | undefined): Date | null {
  if (!row || !deadlineRuns(stateFromRow(row))) return null;
  return row.auto_release_at;
}

/** The row after `events` (as recorded), from the row before them (undefined: none yet). */
export function rowAfter(
  row: EscrowRow | undefined,
  events: ReadonlyArray<{ event: EscrowEvent; recordedAt: Date; streamVersion: number }>,
): EscrowRow | undefined {
  if (events.length === 0) return row;
  let record = row ? recordOf(row) : undefined;
  for (const { event, recordedAt, streamVersion } of events)
    record = evolveRecord(record, event, recordedAt, streamVersion);
  return rowOf(record!);
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
