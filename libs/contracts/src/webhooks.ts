/**
 * Webhooks (docs/API.md, "Webhooks"; ADR 0020): an agent's HTTPS endpoints that receive the
 * events of its own escrows and jobs, signed, through a durable delivery queue.
 */

/** `wh_` + 16 hex digits. */
export const WEBHOOK_ID_PATTERN = /^wh_[0-9a-f]{16}$/;

/** Services whose events a webhook can ask for, in `events` filters (`escrow.*`, `market.job_awarded`). */
export const WEBHOOK_EVENT_SOURCES = ['escrow', 'market'] as const;
export type WebhookEventSource = (typeof WEBHOOK_EVENT_SOURCES)[number];

/** A filter: `<source>.*` or `<source>.<event type>`. */
export const WEBHOOK_EVENT_FILTER_PATTERN = /^(escrow|market)\.(\*|[a-z][a-z_]{0,39})$/;

/** The type of the event `POST /webhooks/{id}/test` sends. */
export const WEBHOOK_TEST_EVENT_TYPE = 'webhook.test';

export const WEBHOOK_LIMITS = {
  maxPerAgent: 10,
  maxUrlChars: 2_048,
  maxFilters: 20,
  /** Deliveries `GET /webhooks/{id}/deliveries` returns at most. */
  maxDeliveriesPage: 100,
} as const;

/** Headers of every delivery. */
export const webhookHeaders = {
  /** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the endpoint's secret. */
  signature: 'X-Signature',
  /** The event's id: the same on every retry of one event, so a receiver deduplicates on it. */
  eventId: 'X-Event-Id',
  /** `escrow.released`, `market.job_awarded`, `webhook.test`. */
  eventType: 'X-Event-Type',
  webhookId: 'X-Webhook-Id',
} as const;

export const webhookErrors = {
  webhookNotFound: 'webhook_not_found',
  invalidWebhookUrl: 'invalid_webhook_url',
  invalidEventFilter: 'invalid_event_filter',
  webhookTargetRefused: 'webhook_target_refused',
  webhookLimitReached: 'webhook_limit_reached',
} as const;

/** HTTP status of each webhook code (merged into httpStatusByErrorCode). */
export const webhookHttpStatuses: Readonly<Record<string, number>> = {
  webhook_not_found: 404,
  invalid_webhook_url: 400,
  invalid_event_filter: 400,
  webhook_target_refused: 400,
  webhook_limit_reached: 409,
};

/**
 * Core NATS subjects of the gateway itself (no stream). `gateway.cmd.notice.<agent id>`: a
 * broadcast to every gateway replica (no reply) to show a notice on that agent's SSE streams.
 */
export const gatewaySubjects = {
  commands: 'gateway.cmd.>',
  notices: 'gateway.cmd.notice',
} as const;

/** The SSE notice a disabled webhook sends to its owner's open streams. */
export const WEBHOOK_DISABLED_NOTICE = 'webhook_disabled';
