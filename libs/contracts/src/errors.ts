import { milestoneHttpStatuses } from './escrow-milestones.js';
import { mandateHttpStatuses } from './mandates.js';
import { marketHttpStatuses } from './market.js';
import { receiptHttpStatuses } from './receipts.js';
import { reputationHttpStatuses } from './reputation.js';
import { webhookHttpStatuses } from './webhooks.js';

/**
 * Error codes, defined once. The gateway maps them to HTTP statuses in exactly one place;
 * services return them inside command replies.
 */
export const ErrorCode = {
  invalidRequest: 'invalid_request',
  invalidAmount: 'invalid_amount',
  unauthorized: 'unauthorized',
  forbidden: 'forbidden',
  notFound: 'not_found',
  /** The path exists but not for this method (e.g. GET on the stateless MCP endpoint). */
  methodNotAllowed: 'method_not_allowed',
  rateLimited: 'rate_limited',
  serviceUnavailable: 'service_unavailable',
  internalError: 'internal_error',
  idempotencyKeyReused: 'idempotency_key_reused',
  requestInProgress: 'request_in_progress',
  /** An anonymous write's Idempotency-Key is too easy to guess to be trusted with its response. */
  weakIdempotencyKey: 'weak_idempotency_key',
  /** Optimistic concurrency: the stream changed since it was read; reload and retry. */
  versionConflict: 'version_conflict',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** HTTP status for each code; anything unlisted is a 500. */
export const httpStatusByErrorCode: Readonly<Record<string, number>> = {
  invalid_request: 400,
  invalid_amount: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  request_in_progress: 409,
  version_conflict: 409,
  idempotency_key_reused: 422,
  weak_idempotency_key: 400,
  rate_limited: 429,
  internal_error: 500,
  service_unavailable: 503,
  // Operators (API.md, "Operators"): `ops verify` has not recorded a result yet.
  no_verify_result: 404,
  // Casino (API.md, "Casino accounts" and "Operators").
  agent_not_found: 404,
  account_not_found: 404,
  insufficient_balance: 402,
  invalid_splits: 400,
  same_account: 400,
  operation_id_reused: 409,
  reference_reused: 409,
  hold_not_found: 404,
  hold_already_posted: 409,
  hold_already_voided: 409,
  part_id_reused: 409,
  // Faucet (API.md, "Faucet").
  ip_rate_limited: 429,
  already_claimed: 409,
  has_deposits: 403,
  faucet_empty: 503,
  // Escrow (API.md, "Escrow").
  invalid_description: 400,
  invalid_counterparty: 400,
  self_escrow: 400,
  invalid_timeout: 400,
  invalid_result_summary: 400,
  invalid_resolution: 400,
  counterparty_not_found: 404,
  invalid_status: 409,
  escrow_id_reused: 422,
  invalid_evaluator: 400,
  evaluator_not_found: 404,
  invalid_evaluator_fee: 400,
  not_evaluator: 403,
  invalid_deliverable: 400,
  invalid_reject_reason: 400,
  invalid_history_query: 400,
  // Market (docs/API.md, "Jobs").
  ...marketHttpStatuses,
  ...reputationHttpStatuses,
  ...milestoneHttpStatuses,
  ...mandateHttpStatuses,
  ...receiptHttpStatuses,
  ...webhookHttpStatuses,
};

/** A failure with a code that crosses service boundaries unchanged. */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export interface ErrorBody {
  error: string;
  message: string;
  suggestion?: string;
  [detail: string]: unknown;
}
