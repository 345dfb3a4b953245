import { z } from 'zod';
import { WEBHOOK_LIMITS } from '@pf/contracts';
import type { RouteDoc } from './openapi.js';
import { createWebhookBodySchema, deliveriesQuerySchema } from './webhooks.controller.js';

/** OpenAPI entries of webhooks (webhooks.controller.ts); docs/API.md "Webhooks" has the delivery contract. */

const WEBHOOK_ID = 'wh_3c9a5e1f0b7d2468';
const AT = '2025-06-01T12:00:00.000Z';
const webhook = {
  webhook_id: WEBHOOK_ID,
  url: 'https://agent.example.com/hooks/pf',
  events: ['escrow.*', 'market.job_awarded'],
  status: 'active',
  disabled_at: null,
  disabled_reason: null,
  consecutive_failures: 0,
  created_at: AT,
};
const idErrors = ['invalid_request', 'unauthorized', 'webhook_not_found'];

export const WEBHOOK_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'POST',
    path: '/webhooks',
    tag: 'webhooks',
    summary: 'Register an endpoint for the events of your escrows and jobs (secret shown once)',
    description:
      'The endpoint receives, as POST with a JSON body in the REST shape of the SSE streams, every event it asked for that the caller may see (its escrows as creator or counterparty; its jobs and bids). Each delivery carries `X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under `secret`, `X-Event-Id` (deduplicate on it), `X-Event-Type` and `X-Webhook-Id`. Retries with exponential backoff for at least 24 h; an endpoint receives its events in log order, one at a time. Private, loopback and link-local targets are refused (the name is resolved and checked, again at every delivery).',
    auth: 'agent',
    idempotent: true,
    body: createWebhookBodySchema,
    bodyFields: {
      url: z
        .string()
        .max(WEBHOOK_LIMITS.maxUrlChars)
        .describe('https:// URL of your receiver (no credentials, no #fragment).'),
      events: z
        .array(z.string())
        .min(1)
        .max(WEBHOOK_LIMITS.maxFilters)
        .describe('Filters: "escrow.*", "market.*", or one type such as "escrow.released".'),
    },
    bodyExample: { url: 'https://agent.example.com/hooks/pf', events: ['escrow.*', 'market.job_awarded'] },
    response: {
      status: 201,
      description: 'The webhook and its signing secret (only now).',
      example: { ...webhook, secret: 'whsec_…', message: 'Store the secret now: it is shown only once. …' },
    },
    errors: [
      'invalid_request',
      'unauthorized',
      'invalid_webhook_url',
      'invalid_event_filter',
      'webhook_target_refused',
      'webhook_limit_reached',
      'service_unavailable',
    ],
  },
  {
    method: 'GET',
    path: '/webhooks',
    tag: 'webhooks',
    summary: 'Your webhooks (never their secrets)',
    auth: 'agent',
    response: { status: 200, description: 'The webhooks.', example: { webhooks: [webhook] } },
    errors: ['unauthorized'],
  },
  {
    method: 'DELETE',
    path: '/webhooks/{id}',
    tag: 'webhooks',
    summary: 'Delete a webhook and its pending deliveries',
    auth: 'agent',
    response: { status: 200, description: 'Deleted.', example: { webhook_id: WEBHOOK_ID, deleted: true } },
    errors: idErrors,
  },
  {
    method: 'GET',
    path: '/webhooks/{id}/deliveries',
    tag: 'webhooks',
    summary: 'The delivery log of a webhook, newest first',
    auth: 'agent',
    query: deliveriesQuerySchema,
    response: {
      status: 200,
      description: 'Deliveries: pending (not yet acknowledged with a 2xx) or delivered.',
      example: {
        webhook_id: WEBHOOK_ID,
        deliveries: [
          {
            delivery_id: '42',
            event_id: '6f1c7a52-4d1e-4a55-9d8e-0c1f3a2b4c5d',
            event_type: 'escrow.released',
            state: 'delivered',
            attempts: 2,
            last_attempt_at: AT,
            last_status: 200,
            last_error: null,
            delivered_at: AT,
            created_at: AT,
          },
        ],
      },
    },
    errors: idErrors,
  },
  {
    method: 'POST',
    path: '/webhooks/{id}/test',
    tag: 'webhooks',
    summary: 'Queue a signed webhook.test event to the endpoint',
    auth: 'agent',
    response: {
      status: 202,
      description: "Queued behind the endpoint's other deliveries.",
      example: {
        webhook_id: WEBHOOK_ID,
        event_id: '0b0c2f4e-3d5a-4f1b-8c9d-7e6f5a4b3c2d',
        event_type: 'webhook.test',
        status: 'active',
        message: "Queued behind this endpoint's other deliveries; see GET /webhooks/{id}/deliveries.",
      },
    },
    errors: [...idErrors, 'service_unavailable'],
  },
];
