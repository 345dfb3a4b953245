import {
  ESCROW_CANCEL_REASONS,
  parseDeliverable,
  RESOLUTION_OUTCOMES,
  type EscrowCancelReason,
  type ResolutionOutcome,
} from '@pf/contracts';
import { parseMicros } from '@pf/money';
import type { EscrowEvent, EscrowEventType, Payout, ReleaseTrigger } from '../domain/escrow.js';

/**
 * Escrow events as stored in the log and published on `escrow.events.<type>`: amounts become
 * integer micro-dollar strings (JSON has no bigint) and come back as bigint when read. The
 * stored shape is the documented payload (docs/events.md); change it only with a new schema.
 */
export const ESCROW_EVENT_TYPES: ReadonlySet<string> = new Set<EscrowEventType>([
  'opened',
  'funded',
  'rejected',
  'completed',
  'disputed',
  'released',
  'refunded',
  'declined',
  'resolved',
  'cancelled',
  'evaluation_rejected',
  'evaluator_refunded',
  'cancel_requested',
  'cancel_consented',
  'mutually_cancelled',
  'milestone_completed',
  'milestone_released',
  'milestones_refunded',
  'milestones_settled',
]);

export const ESCROW_EVENT_SCHEMA_VERSION = 1;

/**
 * Schema 2 (docs/adr/0016): `evaluatorId`/`evaluatorFeeBps` on `opened`, `deliverable` on
 * `completed` (and, optional, on `milestone_completed`), `evaluatorMicros`/`evaluatorId` in a payout, the `evaluator` release trigger, and
 * the five new types. Only events that use one of these are written as schema 2, so an escrow
 * without evaluator or deliverable publishes exactly the schema 1 payloads it always did, and a
 * subscriber that knows only schema 1 can tell the events it does not understand.
 */
export const ESCROW_EVENT_SCHEMA_VERSION_2 = 2;

const SCHEMA_2_TYPES: ReadonlySet<string> = new Set<EscrowEventType>([
  'evaluation_rejected',
  'evaluator_refunded',
  'cancel_requested',
  'cancel_consented',
  'mutually_cancelled',
  // Milestones (docs/adr/0017) came with the same schema: new types, and `milestones` on `opened`.
  'milestone_completed',
  'milestone_released',
  'milestones_refunded',
  'milestones_settled',
]);

export function schemaVersionOf(event: EscrowEvent): number {
  const usesSchema2 =
    SCHEMA_2_TYPES.has(event.type) ||
    (event.type === 'opened' && (event.evaluatorId !== undefined || event.milestones !== undefined)) ||
    (event.type === 'completed' && event.deliverable !== undefined) ||
    (event.type === 'released' &&
      (event.trigger === 'evaluator' || event.payout.evaluatorId !== undefined)) ||
    (event.type === 'resolved' && event.payout?.evaluatorId !== undefined);
  return usesSchema2 ? ESCROW_EVENT_SCHEMA_VERSION_2 : ESCROW_EVENT_SCHEMA_VERSION;
}

type Data = Record<string, unknown>;

export function encodeEscrowEvent(event: EscrowEvent): { type: EscrowEventType; data: Data } {
  const { type, ...rest } = event;
  const data: Data = { ...rest };
  if ('amountMicros' in event) data.amountMicros = event.amountMicros.toString();
  if (event.type === 'rejected') data.availableMicros = event.availableMicros?.toString() ?? null;
  if (
    event.type === 'released' ||
    event.type === 'resolved' ||
    event.type === 'milestone_released' ||
    event.type === 'milestones_settled'
  )
    data.payout = event.payout ? encodePayout(event.payout) : null;
  if (event.type === 'opened' && event.milestones)
    data.milestones = event.milestones.map((milestone) => ({
      description: milestone.description,
      amountMicros: milestone.amountMicros.toString(),
    }));
  return { type, data };
}

export function decodeEscrowEvent(type: string, data: Data): EscrowEvent {
  const escrowId = text(data.escrowId);
  switch (type) {
    case 'opened':
      return {
        type,
        escrowId,
        creatorId: text(data.creatorId),
        counterpartyId: text(data.counterpartyId),
        amountMicros: micros(data.amountMicros),
        commissionBps: int(data.commissionBps),
        referrerId: nullableText(data.referrerId),
        description: text(data.description),
        timeoutMs: int(data.timeoutMs),
        ...(typeof data.jobId === 'string' ? { jobId: data.jobId, race: data.race === true } : {}),
        ...(typeof data.evaluatorId === 'string'
          ? { evaluatorId: data.evaluatorId, evaluatorFeeBps: int(data.evaluatorFeeBps ?? 0) }
          : {}),
        ...(Array.isArray(data.milestones)
          ? {
              milestones: (data.milestones as Data[]).map((milestone) => ({
                description: text(milestone.description),
                amountMicros: micros(milestone.amountMicros),
              })),
            }
          : {}),
        ...(typeof data.keyId === 'string' ? { keyId: data.keyId } : {}),
      };
    case 'funded':
      return { type, escrowId, holdId: text(data.holdId), amountMicros: micros(data.amountMicros) };
    case 'rejected':
      return {
        type,
        escrowId,
        code: text(data.code),
        message: text(data.message),
        availableMicros: data.availableMicros == null ? null : micros(data.availableMicros),
        ...(isStringRecord(data.details) ? { details: data.details } : {}),
      };
    case 'completed': {
      const deliverable = parseDeliverable(data.deliverable);
      return {
        type,
        escrowId,
        by: text(data.by),
        resultSummary: nullableText(data.resultSummary),
        ...(deliverable ? { deliverable } : {}),
      };
    }
    case 'disputed':
      return { type, escrowId, by: text(data.by), reason: nullableText(data.reason) };
    case 'released':
      return {
        type,
        escrowId,
        by: nullableText(data.by),
        trigger: releaseTrigger(data.trigger),
        amountMicros: micros(data.amountMicros),
        payout: decodePayout(data.payout),
      };
    case 'refunded':
      return { type, escrowId, trigger: 'timeout', amountMicros: micros(data.amountMicros) };
    case 'declined':
      return { type, escrowId, by: text(data.by), amountMicros: micros(data.amountMicros) };
    case 'cancelled':
      return {
        type,
        escrowId,
        jobId: text(data.jobId),
        reason: cancelReason(data.reason),
        amountMicros: micros(data.amountMicros),
      };
    case 'evaluation_rejected':
      return { type, escrowId, by: text(data.by), reason: text(data.reason) };
    case 'evaluator_refunded':
      return {
        type,
        escrowId,
        by: text(data.by),
        reason: text(data.reason),
        amountMicros: micros(data.amountMicros),
      };
    case 'cancel_requested':
    case 'cancel_consented':
      return { type, escrowId, by: text(data.by) };
    case 'mutually_cancelled':
      return { type, escrowId, by: text(data.by), amountMicros: micros(data.amountMicros) };
    case 'resolved':
      return {
        type,
        escrowId,
        outcome: outcome(data.outcome),
        counterpartyShareBps: int(data.counterpartyShareBps),
        amountMicros: micros(data.amountMicros),
        payout: data.payout == null ? null : decodePayout(data.payout),
      };
    case 'milestone_completed': {
      // Optional in schema 2: events written before milestones kept deliverables have none.
      const deliverable = parseDeliverable(data.deliverable);
      return {
        type,
        escrowId,
        milestone: int(data.milestone),
        by: text(data.by),
        resultSummary: nullableText(data.resultSummary),
        ...(deliverable ? { deliverable } : {}),
      };
    }
    case 'milestone_released':
      return {
        type,
        escrowId,
        milestone: int(data.milestone),
        by: nullableText(data.by),
        trigger: releaseTrigger(data.trigger),
        amountMicros: micros(data.amountMicros),
        payout: decodePayout(data.payout),
      };
    case 'milestones_refunded':
      return {
        type,
        escrowId,
        milestones: (data.milestones as unknown[]).map(int),
        trigger: 'timeout',
        amountMicros: micros(data.amountMicros),
      };
    case 'milestones_settled':
      return {
        type,
        escrowId,
        outcome: data.outcome === 'released' ? 'released' : 'refunded',
        amountMicros: micros(data.amountMicros),
        payout: data.payout == null ? null : decodePayout(data.payout),
      };
    default:
      throw new Error(`not an escrow event: ${type}`);
  }
}

export function encodePayout(payout: Payout): Data {
  return {
    counterpartyMicros: payout.counterpartyMicros.toString(),
    commissionMicros: payout.commissionMicros.toString(),
    houseMicros: payout.houseMicros.toString(),
    referrerMicros: payout.referrerMicros.toString(),
    referrerId: payout.referrerId,
    creatorMicros: payout.creatorMicros.toString(),
    ...(payout.evaluatorId !== undefined
      ? { evaluatorMicros: (payout.evaluatorMicros ?? 0n).toString(), evaluatorId: payout.evaluatorId }
      : {}),
  };
}

export function decodePayout(value: unknown): Payout {
  if (typeof value !== 'object' || value === null)
    throw new Error('expected a payout object in a stored escrow event');
  const data = value as Data;
  return {
    counterpartyMicros: micros(data.counterpartyMicros),
    commissionMicros: micros(data.commissionMicros),
    houseMicros: micros(data.houseMicros),
    referrerMicros: micros(data.referrerMicros),
    referrerId: nullableText(data.referrerId),
    creatorMicros: micros(data.creatorMicros),
    ...(typeof data.evaluatorId === 'string'
      ? { evaluatorMicros: micros(data.evaluatorMicros ?? '0'), evaluatorId: data.evaluatorId }
      : {}),
  };
}

/** Schema 1 knew only `creator` and `timeout`; anything else unknown reads as the creator's, as before. */
function releaseTrigger(value: unknown): ReleaseTrigger {
  return value === 'timeout' || value === 'evaluator' ? value : 'creator';
}

function micros(value: unknown): bigint {
  return parseMicros(value, 'amountMicros');
}

function text(value: unknown): string {
  if (typeof value !== 'string')
    throw new Error(`expected a string in a stored escrow event, got ${typeof value}`);
  return value;
}

function nullableText(value: unknown): string | null {
  return value == null ? null : text(value);
}

function int(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw new Error(`expected an integer in a stored escrow event, got ${String(value)}`);
  return value;
}

function cancelReason(value: unknown): EscrowCancelReason {
  if (!ESCROW_CANCEL_REASONS.includes(value as EscrowCancelReason))
    throw new Error(`unknown cancel reason ${String(value)}`);
  return value as EscrowCancelReason;
}

function outcome(value: unknown): ResolutionOutcome {
  if (!RESOLUTION_OUTCOMES.includes(value as ResolutionOutcome))
    throw new Error(`unknown resolution outcome ${String(value)}`);
  return value as ResolutionOutcome;
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((entry) => typeof entry === 'string')
  );
}
