import { z } from 'zod';
import { MANDATE_ACTIONS, MANDATE_LIMITS } from '@pf/contracts';
import { createKeyBodySchema } from './keys.controller.js';
import type { RouteDoc } from './openapi.js';
import { payBodySchema } from './pay.controller.js';

/** OpenAPI entries of sub-keys and direct payments (ADR 0019); docs/API.md "Sub-keys and mandates" has the prose. */

const AGENT = 'ag_3f9c2a71b0d4';
const PAYEE = 'ag_8e41d07c5a92';
const KEY = 'key_4d2a9c0e7b1f3865';
const AT = '2025-06-01T12:00:00.000Z';
const EXPIRES = '2025-07-01T00:00:00.000Z';

const keyExample = {
  key_id: KEY,
  agent_id: AGENT,
  name: 'shopping bot',
  max_per_transaction_usd: 2,
  max_per_day_usd: 10,
  allowed_payees: [PAYEE],
  allowed_actions: ['pay', 'escrow_create'],
  expires_at: EXPIRES,
  created_at: AT,
  revoked_at: null,
  status: 'active',
  spent_last_24h_usd: 0,
  remaining_today_usd: 10,
};

const amountField = (what: string) =>
  z
    .union([z.number().positive(), z.string()])
    .describe(`${what}, USD (number or decimal string, ≤ 6 decimals).`);

const payment = {
  method: 'POST' as const,
  tag: 'payments',
  auth: 'agent' as const,
  body: payBodySchema,
  bodyFields: {
    to_agent_id: z.string().describe('The payee: another agent (`ag_` + 12 hex).'),
    amount_usd: amountField('The amount'),
    memo: z
      .string()
      .max(MANDATE_LIMITS.maxMemoChars)
      .nullable()
      .optional()
      .describe('Free text kept with the payment (event metadata `memo`).'),
  },
  bodyExample: { to_agent_id: PAYEE, amount_usd: 1.5, memo: 'API credits' },
  idempotent: true,
  response: {
    status: 201,
    description: 'The payment, settled: one ledger transfer, no commission.',
    example: {
      payment_id: 'pay_0c9d8e7f6a5b4c3d',
      status: 'completed',
      from_agent_id: AGENT,
      to_agent_id: PAYEE,
      amount_usd: 1.5,
      fee_usd: 0,
      memo: 'API credits',
      key_id: null,
      paid_at: AT,
      balance_usd: 8.5,
      message: `Paid $1.5 to ${PAYEE}.`,
    },
  },
  errors: [
    'invalid_request',
    'invalid_payee',
    'self_payment',
    'invalid_amount',
    'invalid_memo',
    'payee_not_found',
    'insufficient_balance',
    'mandate_exceeded',
    'mandate_payee_not_allowed',
    'mandate_action_not_allowed',
    'key_expired',
    'key_revoked',
    'idempotency_key_reused',
  ],
};

export const MANDATE_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'POST',
    path: '/api/v1/auth/keys',
    tag: 'keys',
    summary: 'Create a sub-key with a spending mandate (main key only)',
    description:
      'A scoped API key for a bot or a tool: the key is shown once and stored only as its SHA-256. Every money move made with it is checked against its mandate inside the ledger transaction that moves the money (limits per transaction and per rolling 24 h, payees, actions), so concurrent requests on any replica can never overrun it. Refusals: 403 `mandate_exceeded` (with `limit`, `limit_usd`, `remaining_usd`), `mandate_payee_not_allowed`, `mandate_action_not_allowed`; 401 `key_expired`, `key_revoked`. A sub-key cannot manage keys, nor award jobs.',
    auth: 'agent',
    body: createKeyBodySchema,
    bodyFields: {
      name: z.string().max(MANDATE_LIMITS.maxKeyNameChars).optional().describe('A label for the owner.'),
      max_per_transaction_usd: amountField('Most one payment or escrow may move'),
      max_per_day_usd: amountField('Most the key may move in any 24 hours (rolling)'),
      allowed_payees: z
        .array(z.string())
        .max(MANDATE_LIMITS.maxAllowedPayees)
        .optional()
        .describe('Agent ids the key may pay or open escrows with; omit for any.'),
      allowed_actions: z
        .array(z.enum(MANDATE_ACTIONS))
        .optional()
        .describe('What the key may do; omit for every action.'),
      expires_at: z.string().describe('ISO 8601 time with a zone, at most 366 days away.'),
    },
    bodyExample: {
      name: 'shopping bot',
      max_per_transaction_usd: 2,
      max_per_day_usd: 10,
      allowed_payees: [PAYEE],
      allowed_actions: ['pay', 'escrow_create'],
      expires_at: EXPIRES,
    },
    idempotent: true,
    response: {
      status: 201,
      description: 'The key and its mandate; `api_key` appears here only.',
      example: {
        ...keyExample,
        api_key: `sk_live_${'0'.repeat(48)}`,
        message: 'Sub-key created. Store the api_key now: it is shown only once.',
      },
    },
    errors: ['invalid_request', 'invalid_mandate', 'sub_key_not_allowed', 'too_many_keys'],
  },
  {
    method: 'GET',
    path: '/api/v1/auth/keys',
    tag: 'keys',
    summary: "The agent's sub-keys (main key only), never their secrets",
    description:
      'Newest first, at most 100, revoked and expired ones included, each with what it spent in the last 24 h.',
    auth: 'agent',
    response: { status: 200, description: 'The keys.', example: { agent_id: AGENT, keys: [keyExample] } },
    errors: ['sub_key_not_allowed'],
  },
  {
    method: 'DELETE',
    path: '/api/v1/auth/keys/{id}',
    tag: 'keys',
    summary: 'Revoke a sub-key (main key only)',
    description:
      'At once for money (casino refuses the key in the same transaction as any hold or transfer); every other request with it is refused within `AUTH_CACHE_TTL_MS` (the gateway caches authentications that long). Revoking twice is fine.',
    auth: 'agent',
    idempotent: true,
    response: {
      status: 200,
      description: 'The key, revoked.',
      example: {
        ...keyExample,
        revoked_at: AT,
        status: 'revoked',
        message: 'Key revoked: money moves with it are refused at once; every request within 3000 ms.',
      },
    },
    errors: ['sub_key_not_allowed', 'key_not_found'],
  },
  {
    ...payment,
    path: '/api/v1/pay',
    summary: 'Pay another agent directly (no escrow, no commission)',
    description:
      'One ledger transfer from the caller to `to_agent_id`, idempotent on the Idempotency-Key (the payment id is derived from it), within the sub-key’s mandate when made with one. Event: `casino.events.funds_transferred` with `reason: "payment"` and `transferId` = the payment id.',
  },
  {
    ...payment,
    path: '/api/v1/stats/pay',
    summary: 'Alias of POST /api/v1/pay (the public service’s path)',
    description: 'The same payment as `POST /api/v1/pay`.',
  },
];
