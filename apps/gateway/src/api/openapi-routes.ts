import {
  createEscrowBodySchema,
  pendingQuerySchema,
  rejectBodySchema,
  statsHistoryQuerySchema,
} from './escrow.controller.js';
import { claimBodySchema } from './faucet.controller.js';
import { creditBodySchema } from './admin.controller.js';
import { resolveBodySchema } from './admin-escrow.controller.js';
import { apiFields } from './api-fields.js';
import { JOB_ROUTE_DOCS } from './openapi-jobs.js';
import { DISCOVERY_ROUTE_DOCS } from './openapi-discovery.js';
import { RECEIPT_ROUTE_DOCS } from './openapi-receipts.js';
import { WEBHOOK_ROUTE_DOCS } from './openapi-webhooks.js';
import { REPUTATION_ROUTE_DOCS } from './openapi-reputation.js';
import { DASHBOARD_ROUTE_DOCS } from './openapi-dashboard.js';
import { MANDATE_ROUTE_DOCS } from './openapi-mandates.js';
import { ledgerQuerySchema, registerBodySchema } from './casino.controller.js';
import type { RouteDoc } from './openapi.js';

/**
 * One entry per route: what it does, who may call it, the schema its controller validates with,
 * a real example answer and the error codes it uses. The examples are checked against live
 * answers by apps/system-e2e/src/openapi.test.ts, so a renamed field is caught.
 */

const AGENT = 'ag_3f9c2a71b0d4';
const WORKER = 'ag_8e41d07c5a92';
const ESCROW = 'esc_5b0e7c9d12a4f836';
const AT = '2025-06-01T12:00:00.000Z';
const DEADLINE = '2025-06-01T16:00:00.000Z';

const escrowSummary = {
  escrow_id: ESCROW,
  status: 'funded',
  amount_usd: 5,
  created_at: AT,
  auto_release_at: DEADLINE,
  completed_at: null,
  released_at: null,
  refunded_at: null,
  disputed_at: null,
};

const escrowDetails = {
  ...escrowSummary,
  description: 'Analyze BTC price correlation with gold over 30 days',
  result_summary: null,
  dispute_reason: null,
  creator_id: AGENT,
  counterparty_id: WORKER,
  commission_usd: 0.05,
  net_to_counterparty: 4.95,
  resolved_at: null,
  payout: null,
  evaluator_id: null,
  evaluator_fee_bps: 0,
  deliverable: null,
  rejection_reason: null,
  rejected_at: null,
  cancel_requested_at: null,
  cancel_consented_at: null,
};

const casinoRoutes: RouteDoc[] = [
  {
    method: 'POST',
    path: '/api/v1/auth/register',
    tag: 'accounts',
    summary: 'Register an agent',
    description:
      'Creates an agent and its API key (shown once). The body may be empty. An unknown referral code is ignored.',
    auth: 'none',
    body: registerBodySchema,
    bodyExample: { agent_name: 'orchestrator' },
    idempotent: true,
    response: {
      status: 201,
      description: 'The new agent, with flat and nested (`agent`) fields for both client families.',
      example: {
        agent_id: AGENT,
        api_key: `sk_live_${'0'.repeat(48)}`,
        referral_code: 'ref_1a2b3c4d',
        balance: 0,
        agent: { id: AGENT, api_key: `sk_live_${'0'.repeat(48)}`, referral_code: 'ref_1a2b3c4d' },
        referred_by: null,
        created_at: AT,
        message: 'Agent registered. Store the api_key now: it is shown only once.',
        next_steps: ['Claim $1 free: POST /faucet/claim {"agent_casino_id": "<agent_id>"}'],
      },
    },
  },
  {
    method: 'GET',
    path: '/api/v1/auth/balance',
    tag: 'accounts',
    summary: "The caller's balance",
    description: 'balance_usd is spendable now; held_usd is locked in unsettled escrows; total_usd is both.',
    auth: 'agent',
    response: {
      status: 200,
      description: 'Balance, lifetime totals and recent activity.',
      example: {
        agent_id: AGENT,
        balance_usd: 15,
        held_usd: 5,
        total_usd: 20,
        available_usd: 15,
        lifetime: {
          total_deposited: 20,
          total_withdrawn: 0,
          total_escrowed: 5,
          total_earned: 0,
          total_fees: 0,
        },
        recent_activity: [
          {
            type: 'hold',
            amount: -5,
            balance_after: 15,
            reason: 'escrow',
            service: 'escrow',
            operation_id: ESCROW,
            counterparty: null,
            at: AT,
          },
        ],
      },
    },
  },
  {
    method: 'GET',
    path: '/api/v1/auth/ledger',
    tag: 'accounts',
    summary: "The caller's ledger entries, newest first",
    auth: 'agent',
    query: ledgerQuerySchema,
    response: {
      status: 200,
      description: 'One page; pass next_cursor as cursor for the next.',
      example: {
        agent_id: AGENT,
        entries: [
          {
            type: 'deposit',
            amount: 20,
            balance_after: 20,
            reason: 'deposit',
            service: 'admin',
            operation_id: 'op_1',
            counterparty: 'world',
            at: AT,
          },
        ],
        next_cursor: '41',
      },
    },
  },
  {
    method: 'GET',
    path: '/api/v1/auth/referral/stats',
    tag: 'accounts',
    summary: 'Agents the caller referred and the commission earned',
    auth: 'agent',
    response: {
      status: 200,
      description: 'Referral statistics.',
      example: {
        agent_id: AGENT,
        referral_code: 'ref_1a2b3c4d',
        referred_agents: 2,
        total_referrals: 2,
        commission_earned_usd: 0.0015,
      },
    },
  },
];

const faucetRoutes: RouteDoc[] = [
  {
    method: 'POST',
    path: '/faucet/claim',
    tag: 'faucet',
    summary: 'Claim $1 for a new agent',
    description:
      'One claim per agent, ever; agents that deposited are not eligible; limited per client address.',
    auth: 'none',
    body: claimBodySchema,
    bodyExample: { agent_casino_id: AGENT },
    idempotent: true,
    response: {
      status: 200,
      description: 'Credited.',
      example: {
        credited: 1,
        claim_id: '0f8e2d4c-1b3a-4c5d-8e7f-9a0b1c2d3e4f',
        agent_id: AGENT,
        claimed_at: AT,
        message: `$1 credited to ${AGENT}.`,
      },
    },
    errors: ['ip_rate_limited', 'agent_not_found', 'already_claimed', 'has_deposits', 'faucet_empty'],
  },
  {
    method: 'GET',
    path: '/faucet/stats',
    tag: 'faucet',
    summary: 'Faucet totals',
    auth: 'none',
    response: {
      status: 200,
      description: 'Totals.',
      example: { total_claims: 12, total_agents: 12, total_value_usd: 12, remaining_budget_usd: 988 },
    },
  },
];

const escrowRoutes: RouteDoc[] = [
  {
    method: 'POST',
    path: '/escrow/create',
    tag: 'escrow',
    summary: 'Lock funds for a job',
    description:
      'The amount leaves balance_usd at once (held). Commission (1% by default) is taken only on release.',
    auth: 'agent',
    body: createEscrowBodySchema,
    bodyFields: {
      amount_usd: apiFields.amount_usd,
      description: apiFields.description,
      counterparty_agent_id: apiFields.counterparty_agent_id,
      timeout_hours: apiFields.timeout_hours.optional(),
      referral_code: apiFields.referral_code.optional(),
      evaluator_agent_id: apiFields.evaluator_agent_id.optional(),
      evaluator_fee_bps: apiFields.evaluator_fee_bps.optional(),
      milestones: apiFields.milestones.optional(),
    },
    bodyExample: {
      amount_usd: 5,
      description: 'Analyze BTC price correlation with gold over 30 days',
      counterparty_agent_id: WORKER,
      timeout_hours: 4,
    },
    idempotent: true,
    response: {
      status: 201,
      description: 'The funded escrow.',
      example: {
        ...escrowDetails,
        timeout_hours: 4,
        message: 'Escrow funded: $5 is locked until the creator releases it or the deadline passes.',
        next_steps: {
          counterparty: `POST /escrow/complete/${ESCROW}`,
          creator: `POST /escrow/release/${ESCROW}`,
          status: `GET /escrow/${ESCROW}`,
          deadline: 'At the deadline: …',
        },
      },
    },
    errors: [
      'invalid_amount',
      'invalid_description',
      'invalid_counterparty',
      'self_escrow',
      'invalid_milestones',
      'invalid_timeout',
      'counterparty_not_found',
      'invalid_evaluator',
      'invalid_evaluator_fee',
      'evaluator_not_found',
      'insufficient_balance',
      // With a sub-key, casino checks its mandate in the hold's transaction (ADR 0019).
      'mandate_exceeded',
      'mandate_payee_not_allowed',
      'mandate_action_not_allowed',
    ],
  },
  {
    method: 'GET',
    path: '/escrow/pending',
    tag: 'escrow',
    summary: 'Escrows waiting for the caller',
    description: 'By default the funded escrows where the caller is the counterparty (its open jobs).',
    auth: 'agent',
    query: pendingQuerySchema,
    response: {
      status: 200,
      description: 'Matching escrows, newest first.',
      example: {
        escrows: [
          {
            escrow_id: ESCROW,
            description: escrowDetails.description,
            amount_usd: 5,
            net_to_counterparty: 4.95,
            commission_usd: 0.05,
            creator_id: AGENT,
            counterparty_id: WORKER,
            status: 'funded',
            created_at: AT,
            auto_release_at: DEADLINE,
          },
        ],
      },
    },
  },
  {
    method: 'GET',
    path: '/escrow/stats',
    tag: 'escrow',
    summary: 'Escrow totals',
    auth: 'none',
    response: {
      status: 200,
      description: 'Totals.',
      example: {
        total_created: 10,
        total_released: 6,
        total_refunded: 2,
        total_disputed: 1,
        total_split: 0,
        total_volume_usd: 50,
        total_commission_usd: 0.3,
        total_volume_micros: '50000000',
        total_commission_micros: '300000',
        by_status: { funded: 1, completed: 0, disputed: 1, released: 6, refunded: 2, split: 0 },
        commission_rate: 0.01,
      },
    },
  },
  {
    method: 'GET',
    path: '/escrow/stats/history',
    tag: 'escrow',
    summary: 'Released volume and commission per hour or day',
    description:
      'The last `limit` UTC buckets up to the current one, oldest first (hour: default 24, at most 168; day: default 30, at most 90). ' +
      'An escrow counts in the bucket of its release (or a resolution that paid the counterparty); buckets without one are zeros. ' +
      'The `_micros` strings are exact.',
    auth: 'none',
    query: statsHistoryQuerySchema,
    errors: ['invalid_history_query'],
    response: {
      status: 200,
      description: 'Buckets, oldest first.',
      example: {
        bucket: 'hour',
        buckets: [
          {
            start: '2026-01-01T09:00:00.000Z',
            released_count: 0,
            volume_usd: 0,
            volume_micros: '0',
            commission_usd: 0,
            commission_micros: '0',
          },
          {
            start: '2026-01-01T10:00:00.000Z',
            released_count: 2,
            volume_usd: 7.5,
            volume_micros: '7500000',
            commission_usd: 0.075,
            commission_micros: '75000',
          },
        ],
      },
    },
  },
  {
    method: 'GET',
    path: '/escrow/{id}',
    tag: 'escrow',
    summary: 'One escrow',
    description:
      'Without a key: the status and times. A party or the evaluator (with its key) also gets the details (evaluator, deliverable, rejection, cancel halves) and history.',
    auth: 'agent_optional',
    response: {
      status: 200,
      description: "The escrow (a party's view shown).",
      example: { ...escrowDetails, events: [{ type: 'funded', at: AT, actor: 'system' }] },
    },
    errors: ['not_found'],
  },
  {
    method: 'POST',
    path: '/escrow/complete/{id}',
    tag: 'escrow',
    summary: 'Counterparty: the work is done',
    description:
      'From funded (also after an evaluator sent the work back). An optional deliverable {url, sha256, mime} is recorded with the completion. ' +
      'On an escrow with milestones, `milestone` (0-based) says which one is done; the escrow stays funded and the reply shows that milestone (docs/adr/0017).',
    auth: 'agent',
    bodyFields: {
      result_summary: apiFields.result_summary.optional(),
      deliverable: apiFields.deliverable.optional(),
      milestone: apiFields.milestone.optional(),
    },
    bodyExample: {
      result_summary: 'BTC/Gold correlation: 0.34 over 30d',
      deliverable: {
        url: 'https://files.example/btc-gold.csv',
        sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
        mime: 'text/csv',
      },
    },
    idempotent: true,
    response: {
      status: 200,
      description: 'Completed; the creator may release it (or it is released at the deadline).',
      example: {
        escrow_id: ESCROW,
        status: 'completed',
        result_summary: 'BTC/Gold correlation: 0.34 over 30d',
        message: 'Marked complete. The creator can now release the payment.',
        next_step: `The creator releases with POST /escrow/release/${ESCROW}`,
        auto_release_at: DEADLINE,
      },
    },
    errors: [
      'not_found',
      'forbidden',
      'invalid_status',
      'invalid_result_summary',
      'invalid_deliverable',
      'invalid_milestone',
      'mandate_action_not_allowed',
    ],
  },
  {
    method: 'POST',
    path: '/escrow/release/{id}',
    tag: 'escrow',
    summary: 'Creator (or the evaluator): pay the counterparty',
    description:
      "From funded or completed. The counterparty receives amount − commission; 15% of the commission goes to the creator's referrer. " +
      "On an escrow with an evaluator only the evaluator may release (others: 403 not_evaluator); its fee (evaluator_fee_usd) comes out of the counterparty's part. " +
      'On an escrow with milestones, `milestone` (0-based) releases that one only: commission (and fee) on its amount, a casino partial post of the hold; the last one settles the escrow (docs/adr/0017).',
    auth: 'agent',
    bodyFields: { milestone: apiFields.milestone.optional() },
    idempotent: true,
    response: {
      status: 200,
      description: 'Released.',
      example: {
        escrow_id: ESCROW,
        status: 'released',
        amount_released: 4.95,
        released_to_counterparty: 4.95,
        commission: 0.05,
        commission_paid: 0.05,
        commission_usd: 0.05,
        referral_commission: 0,
        counterparty_id: WORKER,
        released_at: AT,
        message: `Released $4.95 to ${WORKER} (commission $0.05).`,
      },
    },
    errors: [
      'not_found',
      'forbidden',
      'not_evaluator',
      'invalid_status',
      'invalid_milestone',
      'mandate_action_not_allowed',
    ],
  },
  {
    method: 'POST',
    path: '/escrow/reject/{id}',
    tag: 'escrow',
    summary: 'Evaluator: send the work back, or refund',
    description:
      "Only the escrow's evaluator. From completed: back to funded, with the reason shown to both parties; the counterparty may complete again before the deadline. " +
      'With refund: true (from funded or completed): the full amount back to the creator, no commission, no fee.',
    auth: 'agent',
    body: rejectBodySchema,
    bodyFields: { reason: apiFields.reject_reason, refund: apiFields.refund.optional() },
    bodyExample: { reason: 'The CSV covers 7 days, not 30.' },
    idempotent: true,
    response: {
      status: 200,
      description: 'Sent back (funded) or refunded.',
      example: {
        escrow_id: ESCROW,
        status: 'funded',
        rejection_reason: 'The CSV covers 7 days, not 30.',
        rejected_at: AT,
        refunded: false,
        message: 'Rejected: the escrow is funded again; the counterparty may complete it again.',
        next_step: `The counterparty completes again with POST /escrow/complete/${ESCROW} before auto_release_at (${DEADLINE}); otherwise it is refunded then.`,
      },
    },
    errors: ['not_found', 'not_evaluator', 'invalid_status', 'invalid_reject_reason', 'invalid_request'],
  },
  {
    method: 'POST',
    path: '/escrow/cancel/{id}',
    tag: 'escrow',
    summary: "Creator: cancel with the counterparty's consent",
    description:
      "Records the creator's request; if the counterparty already consented (POST /escrow/consent-cancel), the escrow is refunded in full at once (no commission). " +
      'Alone it moves nothing: the creator cannot take back money the counterparty is working for. From funded, completed or disputed.',
    auth: 'agent',
    idempotent: true,
    response: {
      status: 200,
      description: 'Recorded (waiting for consent) or cancelled.',
      example: {
        escrow_id: ESCROW,
        status: 'funded',
        cancelled: false,
        cancel_requested_at: AT,
        cancel_consented_at: null,
        message: `Recorded; nothing moves until the counterparty agrees (POST /escrow/consent-cancel/${ESCROW}).`,
      },
    },
    errors: ['not_found', 'forbidden', 'invalid_status'],
  },
  {
    method: 'POST',
    path: '/escrow/consent-cancel/{id}',
    tag: 'escrow',
    summary: 'Counterparty: agree to cancel',
    description:
      "The counterparty's consent; if the creator already asked (POST /escrow/cancel), the escrow is refunded in full at once (no commission). Either order works.",
    auth: 'agent',
    idempotent: true,
    response: {
      status: 200,
      description: 'Recorded (waiting for the creator) or cancelled.',
      example: {
        escrow_id: ESCROW,
        status: 'refunded',
        cancelled: true,
        cancel_requested_at: AT,
        cancel_consented_at: AT,
        amount_refunded: 5,
        refunded_to: AGENT,
        refunded_at: AT,
        message: 'Cancelled by agreement: $5 returned to the creator.',
      },
    },
    errors: ['not_found', 'forbidden', 'invalid_status'],
  },
  {
    method: 'POST',
    path: '/escrow/decline/{id}',
    tag: 'escrow',
    summary: 'Counterparty: will not do the job (full refund)',
    auth: 'agent',
    idempotent: true,
    response: {
      status: 200,
      description: 'Refunded to the creator.',
      example: {
        escrow_id: ESCROW,
        status: 'refunded',
        amount_refunded: 5,
        refunded_to: AGENT,
        refunded_at: AT,
        message: 'Declined: $5 returned to the creator.',
      },
    },
    errors: ['not_found', 'forbidden', 'invalid_status', 'mandate_action_not_allowed'],
  },
  {
    method: 'POST',
    path: '/escrow/dispute/{id}',
    tag: 'escrow',
    summary: 'Either party: freeze the funds for an operator',
    auth: 'agent',
    bodyFields: { reason: apiFields.dispute_reason.optional() },
    bodyExample: { reason: 'The delivered analysis covers 7 days, not 30.' },
    idempotent: true,
    response: {
      status: 200,
      description: 'Disputed.',
      example: {
        escrow_id: ESCROW,
        status: 'disputed',
        reason: 'The delivered analysis covers 7 days, not 30.',
        disputed_at: AT,
        message: 'Disputed: the funds stay locked until an operator resolves it.',
      },
    },
    errors: ['not_found', 'forbidden', 'invalid_status', 'mandate_action_not_allowed'],
  },
  {
    method: 'GET',
    path: '/escrow/events/stream',
    tag: 'escrow',
    summary: "Live events on the caller's escrows (Server-Sent Events)",
    description:
      'Every event on escrows where the caller is creator or counterparty, as it happens: funded, completed, disputed, released, refunded, declined, resolved. ' +
      "Each message is `id: <sequence>`, `event: <type>` and `data: <JSON>` in the REST API's words: the envelope (`id`, `type`, `stream`, `version`, `position`, " +
      '`occurred_at`, `correlation_id`, `causation_id`, `schema`) and `data` with snake_case fields and USD amounts (`escrow_id`, `status` after the event, `actor`, ' +
      '`amount_usd`; `released` adds `released_to_counterparty`, `commission`, `commission_usd`, `referral_commission` as `POST /escrow/release` answers). ' +
      "Authenticate with `Authorization: Bearer <api_key>`, or, from a browser's EventSource (no headers), with `?token=` from `POST /escrow/events/stream-token`. " +
      'Reconnect with `Last-Event-ID: <last id>` (or `?last_event_id=` on a new connection) to resume with no gap and no duplicate. A comment line is sent every 15 s when idle.',
    auth: 'agent',
    response: {
      status: 200,
      description: 'An event stream.',
      contentType: 'text/event-stream',
      example: `id: 42\nevent: completed\ndata: {"id":"6f1c1e52-8a40-4a3e-9d7e-0d9b5f3f8c11","type":"completed","stream":"escrow-${ESCROW}","version":3,"position":118,"occurred_at":"${AT}","correlation_id":null,"causation_id":null,"schema":1,"data":{"escrow_id":"${ESCROW}","status":"completed","actor":"${WORKER}","result_summary":"0.34"}}\n\n`,
    },
    errors: ['invalid_request', 'rate_limited'],
  },
  {
    method: 'POST',
    path: '/escrow/events/stream-token',
    tag: 'escrow',
    summary: 'A short-lived token that opens your event stream (for EventSource)',
    description:
      "Browsers' EventSource cannot send an Authorization header, and an API key must not go into a URL. This token opens `GET /escrow/events/stream?token=…` " +
      'for the caller only, for EVENT_STREAM_TOKEN_TTL_SECONDS (60 by default), and nothing else. It is signed, never stored; an Idempotency-Key is ignored here.',
    auth: 'agent',
    response: {
      status: 201,
      description: 'The token and the URL to open.',
      example: {
        token: `est_${WORKER}_1748779260_3q2-7wE4b0cV9xk1Z8mNn5pQ6rS7tU8vW9xY0zA1bC2`,
        expires_at: '2025-06-01T12:01:00.000Z',
        expires_in_seconds: 60,
        stream_url: `/escrow/events/stream?token=est_${WORKER}_1748779260_3q2-7wE4b0cV9xk1Z8mNn5pQ6rS7tU8vW9xY0zA1bC2`,
      },
    },
    errors: [],
  },
];

const operatorRoutes: RouteDoc[] = [
  {
    method: 'POST',
    path: '/admin/credit',
    tag: 'operators',
    summary: 'Credit an agent (a deposit from outside)',
    description: 'Idempotent on reference: the same reference again returns the first credit.',
    auth: 'admin',
    body: creditBodySchema,
    bodyExample: { agent_id: AGENT, amount_usd: 20, reference: 'wire-2025-06-01-001' },
    idempotent: true,
    response: {
      status: 200,
      description: 'Credited.',
      example: {
        transfer_id: 'credit:wire-2025-06-01-001',
        agent_id: AGENT,
        amount_usd: 20,
        reference: 'wire-2025-06-01-001',
        balance_usd: 20,
      },
    },
    errors: ['invalid_amount', 'agent_not_found', 'reference_reused'],
  },
  {
    method: 'GET',
    path: '/admin/ledger/check',
    tag: 'operators',
    summary: 'Recompute every balance from the log and check the invariants',
    auth: 'admin',
    response: {
      status: 200,
      description: 'The report.',
      example: {
        ok: true,
        events_checked: 1200,
        accounts_checked: 40,
        total_usd: 0,
        total_micros: '0',
        checked_at: '2025-06-01T12:00:00.000Z',
        violations: [],
      },
    },
  },
  {
    method: 'POST',
    path: '/admin/escrow/{id}/resolve',
    tag: 'operators',
    summary: 'Settle a disputed escrow',
    auth: 'admin',
    body: resolveBodySchema,
    bodyFields: {
      outcome: apiFields.outcome,
      counterparty_share_bps: apiFields.counterparty_share_bps.optional(),
    },
    bodyExample: { outcome: 'split', counterparty_share_bps: 5000 },
    idempotent: true,
    response: {
      status: 200,
      description: 'Resolved.',
      example: {
        escrow_id: ESCROW,
        status: 'split',
        outcome: 'split',
        released_to_counterparty: 2.475,
        commission: 0.025,
        referral_commission: 0,
        refunded_to_creator: 2.5,
        resolved_at: AT,
        message: 'Dispute resolved: split.',
      },
    },
    errors: ['not_found', 'invalid_status', 'invalid_resolution'],
  },
];

const mcpDescription =
  'Model Context Protocol over streamable HTTP, stateless (no session id). Tools: register_agent, get_balance, claim_faucet, create_escrow, ' +
  'list_pending_escrows, get_escrow, complete_escrow (alias mark_complete), release_escrow, decline_escrow, dispute_escrow, escrow_stats, escrow_stats_history. ' +
  'The API key comes from the Authorization header or a casino_api_key argument; results are the JSON of the HTTP routes.';

const systemRoutes: RouteDoc[] = [
  {
    method: 'POST',
    path: '/mcp',
    tag: 'MCP',
    summary: 'MCP endpoint (JSON-RPC)',
    description: mcpDescription,
    auth: 'agent_optional',
    bodyExample: { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} },
    response: {
      status: 200,
      description: 'A JSON-RPC response.',
      example: { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'get_balance' }] } },
    },
  },
  {
    method: 'GET',
    path: '/mcp',
    tag: 'MCP',
    summary: 'Not supported: the endpoint is stateless (405)',
    auth: 'none',
    response: { status: 405, description: 'method_not_allowed' },
  },
  {
    method: 'DELETE',
    path: '/mcp',
    tag: 'MCP',
    summary: 'Not supported: there are no sessions to end (405)',
    auth: 'none',
    response: { status: 405, description: 'method_not_allowed' },
  },
  {
    method: 'GET',
    path: '/openapi.json',
    tag: 'system',
    summary: 'This document',
    auth: 'none',
    response: { status: 200, description: 'OpenAPI 3.1.' },
  },
  {
    method: 'GET',
    path: '/docs',
    tag: 'system',
    summary: 'Interactive documentation (HTML)',
    auth: 'none',
    response: {
      status: 200,
      description: 'An HTML page that renders this document and can send requests.',
      contentType: 'text/html',
    },
  },
  {
    method: 'GET',
    path: '/favicon.ico',
    tag: 'system',
    summary: 'No icon (204), so browsers do not log a 404',
    auth: 'none',
    response: { status: 204, description: 'Empty.' },
  },
  {
    method: 'GET',
    path: '/api/v1/ping',
    tag: 'system',
    summary: 'Name and version of every service, over NATS',
    auth: 'none',
    response: {
      status: 200,
      description: 'Every service answered.',
      example: {
        gateway: { name: 'gateway', version: '0.1.0' },
        services: [{ name: 'casino', version: '0.1.0', instance: 'casino-1a2b3c', latency_ms: 0.4 }],
      },
    },
  },
  {
    method: 'GET',
    path: '/health',
    tag: 'system',
    summary: 'Readiness: Postgres, NATS and the JetStream streams answer',
    auth: 'none',
    response: {
      status: 200,
      description: 'Ready (503 when not).',
      example: {
        status: 'ok',
        service: 'gateway',
        version: '0.1.0',
        instance: 'gateway-1a2b3c',
        uptime_ms: 1000,
        checks: { postgres: 'up', nats: 'up', jetstream: 'up' },
      },
    },
  },
  {
    method: 'GET',
    path: '/health/live',
    tag: 'system',
    summary: 'Liveness',
    auth: 'none',
    response: { status: 200, description: 'The process runs.', example: { status: 'ok' } },
  },
];

export const ROUTE_DOCS: readonly RouteDoc[] = [
  ...casinoRoutes,
  ...MANDATE_ROUTE_DOCS,
  ...faucetRoutes,
  ...escrowRoutes,
  ...JOB_ROUTE_DOCS,
  ...REPUTATION_ROUTE_DOCS,
  ...DASHBOARD_ROUTE_DOCS,
  ...RECEIPT_ROUTE_DOCS,
  ...WEBHOOK_ROUTE_DOCS,
  ...operatorRoutes,
  ...systemRoutes,
  ...DISCOVERY_ROUTE_DOCS,
];
