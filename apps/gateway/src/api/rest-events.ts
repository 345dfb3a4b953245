import type { EventEnvelope } from '@pf/contracts';
import { usd } from './request.js';

/**
 * An event as clients see it (SSE, and anything else that shows events to agents): the
 * envelope's ids and order fields as on JetStream, `data` in the REST API's dialect —
 * snake_case names, USD amounts as JSON numbers, the field names the REST answers use.
 * Internal subscribers keep the envelope of docs/events.md (camelCase, micro-dollar strings).
 */
export interface RestEvent {
  id: string;
  type: string;
  stream: string;
  version: number;
  position: number;
  occurred_at: string;
  correlation_id: string | null;
  causation_id: string | null;
  schema: number;
  data: Record<string, unknown>;
}

/** Turns one event type's internal `data` into REST fields (after the generic renaming). */
export type RestDataMapper = (
  data: Record<string, unknown>,
  internal: Record<string, unknown>,
) => Record<string, unknown>;

/** Mappers per event type; other services' feeds (jobs, market) register their own table. */
export type RestEventMappers = Readonly<Record<string, RestDataMapper>>;

export function toRestEvent(envelope: EventEnvelope, mappers: RestEventMappers): RestEvent {
  const generic = restFields(envelope.data) as Record<string, unknown>;
  const mapper = mappers[envelope.type];
  return {
    id: envelope.id,
    type: envelope.type,
    stream: envelope.stream,
    version: envelope.version,
    position: envelope.position,
    occurred_at: envelope.occurred_at,
    correlation_id: envelope.correlation_id,
    causation_id: envelope.causation_id,
    schema: envelope.schema,
    data: mapper ? mapper(generic, envelope.data) : generic,
  };
}

/**
 * The generic part of the mapping, for every event: camelCase keys become snake_case, and a
 * `…Micros` decimal string becomes `…_usd`, a number of USD (`amountMicros: "4950000"` →
 * `amount_usd: 4.95`), at any depth.
 */
export function restFields(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(restFields);
  if (value === null || typeof value !== 'object') return value;
  const fields: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    const micros = /^(.*)Micros$/.exec(key);
    if (
      micros &&
      (typeof inner === 'string' || typeof inner === 'bigint') &&
      /^-?[0-9]+$/.test(String(inner))
    ) {
      fields[`${snakeCase(micros[1]!)}_usd`] = usd(String(inner));
    } else {
      fields[snakeCase(key)] = restFields(inner);
    }
  }
  return fields;
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

interface RestPayout {
  counterparty_usd?: number;
  commission_usd?: number;
  referrer_usd?: number;
  creator_usd?: number;
  evaluator_usd?: number;
  evaluator_id?: string;
}

/** A payout in the release answer's words (`released_to_counterparty`, `commission_usd`, …). */
function payoutFields(payout: unknown): Record<string, unknown> {
  if (payout === null || typeof payout !== 'object') return {};
  const parts = payout as RestPayout;
  return {
    released_to_counterparty: parts.counterparty_usd ?? 0,
    commission: parts.commission_usd ?? 0,
    commission_usd: parts.commission_usd ?? 0,
    referral_commission: parts.referrer_usd ?? 0,
    returned_to_creator: parts.creator_usd ?? 0,
    ...(parts.evaluator_id !== undefined
      ? { evaluator_id: parts.evaluator_id, evaluator_fee_usd: parts.evaluator_usd ?? 0 }
      : {}),
  };
}

/** Job events need no per-type mapping: the generic one (snake_case, `…Micros` → `…_usd`) is their REST shape. */
export const jobRestEvents: RestEventMappers = {};

const RESOLVED_STATUS: Readonly<Record<string, string>> = {
  release: 'released',
  refund: 'refunded',
  split: 'split',
};

/**
 * Escrow events (docs/events.md) in the REST shape: every message names the escrow
 * (`escrow_id`) and the status it leaves the escrow in, `by` becomes `actor` (as in
 * `GET /escrow/{id}`'s `events`), and a payout is spelled as `POST /escrow/release` answers it.
 * Who referred the creator is the creator's business: the payout's `referrer_id` is left out.
 */
export const escrowRestEvents: RestEventMappers = {
  funded: ({ escrow_id, amount_usd }) => ({ escrow_id, status: 'funded', amount_usd }),
  completed: ({ escrow_id, by, result_summary, deliverable }) => ({
    escrow_id,
    status: 'completed',
    actor: by,
    result_summary,
    ...(deliverable ? { deliverable } : {}),
  }),
  evaluation_rejected: ({ escrow_id, by, reason }) => ({
    escrow_id,
    status: 'funded',
    actor: by,
    rejection_reason: reason,
  }),
  evaluator_refunded: ({ escrow_id, by, reason, amount_usd }) => ({
    escrow_id,
    status: 'refunded',
    actor: by,
    trigger: 'evaluator_rejected',
    rejection_reason: reason,
    amount_usd,
    refunded_usd: amount_usd,
  }),
  cancel_requested: ({ escrow_id, by }) => ({ escrow_id, actor: by, cancel: 'requested_by_creator' }),
  cancel_consented: ({ escrow_id, by }) => ({ escrow_id, actor: by, cancel: 'consented_by_counterparty' }),
  mutually_cancelled: ({ escrow_id, by, amount_usd }) => ({
    escrow_id,
    status: 'refunded',
    actor: by,
    trigger: 'cancelled_by_agreement',
    amount_usd,
    refunded_usd: amount_usd,
  }),
  disputed: ({ escrow_id, by, reason }) => ({ escrow_id, status: 'disputed', actor: by, reason }),
  released: ({ escrow_id, by, trigger, amount_usd, payout }) => {
    const paid = payoutFields(payout);
    return {
      escrow_id,
      status: 'released',
      actor: by,
      trigger,
      amount_usd,
      amount_released: paid.released_to_counterparty,
      ...paid,
    };
  },
  refunded: ({ escrow_id, trigger, amount_usd }) => ({
    escrow_id,
    status: 'refunded',
    actor: null,
    trigger,
    amount_usd,
    refunded_usd: amount_usd,
  }),
  declined: ({ escrow_id, by, amount_usd }) => ({
    escrow_id,
    status: 'refunded',
    actor: by,
    trigger: 'declined',
    amount_usd,
    refunded_usd: amount_usd,
  }),
  // Milestones (docs/adr/0017): `milestone` is the 0-based index, as the routes take it.
  milestone_completed: ({ escrow_id, milestone, by, result_summary, deliverable }) => ({
    escrow_id,
    status: 'funded',
    milestone,
    actor: by,
    result_summary,
    ...(deliverable ? { deliverable } : {}),
  }),
  milestone_released: ({ escrow_id, milestone, by, trigger, amount_usd, payout }) => ({
    escrow_id,
    milestone,
    actor: by,
    trigger,
    amount_usd,
    ...payoutFields(payout),
  }),
  milestones_refunded: ({ escrow_id, milestones, trigger, amount_usd }) => ({
    escrow_id,
    milestones,
    actor: null,
    trigger,
    amount_usd,
    refunded_usd: amount_usd,
  }),
  milestones_settled: ({ escrow_id, outcome, amount_usd, payout }) => ({
    escrow_id,
    status: outcome,
    amount_usd,
    ...(payout ? payoutFields(payout) : { returned_to_creator: amount_usd }),
  }),
  resolved: ({ escrow_id, outcome, counterparty_share_bps, amount_usd, payout }) => ({
    escrow_id,
    status: RESOLVED_STATUS[String(outcome)] ?? String(outcome),
    actor: 'operator',
    outcome,
    counterparty_share_bps,
    amount_usd,
    ...(payout
      ? payoutFields(payout)
      : {
          released_to_counterparty: 0,
          commission_usd: 0,
          referral_commission: 0,
          returned_to_creator: amount_usd,
        }),
  }),
};
