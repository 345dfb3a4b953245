import {
  accountsQuerySchema,
  deadlinesQuerySchema,
  deadLettersQuerySchema,
} from './admin-dashboard.controller.js';
import type { RouteDoc } from './openapi.js';

/** OpenAPI entries of the dashboard page and its public live feeds; docs/API.md "Dashboard" has the prose. */

const ESCROW = 'esc_5b0e7c9d12a4f836';
const AT = '2025-06-01T12:00:00.000Z';
const CREATOR = 'ag_3f9c2a71b0d4';
const WORKER = 'ag_8e41d07c5a92';
const ADMIN_ERRORS = ['unauthorized', 'service_unavailable'];

const PUBLIC_FEED_DESCRIPTION =
  'No key: the live feed the dashboard shows. Each message is `id: <sequence>`, `event: <type>`, `data: {id, type, stream, occurred_at, data}` where `data` holds only what is public anyway: ' +
  '`escrow_id` or `job_id`, and for escrows the new `status`, `amount_micros` and on a payout `commission_micros` (exact micro-dollar strings). ' +
  'Parties, descriptions, summaries and reasons are never sent. Resume with `Last-Event-ID` (or `?last_event_id=`); at most PUBLIC_EVENT_STREAMS_PER_IP_MAX open per client address.';

export const DASHBOARD_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'GET',
    path: '/dashboard',
    tag: 'system',
    summary:
      'The live dashboard (HTML): job board, leaderboard, live events, charts; operator view with the admin key',
    description:
      'Built by `npm run build` (apps/dashboard, Vite + Preact + uPlot) and served with a CSP that allows only this origin. ' +
      'The operator view asks for the admin key once, keeps it in the tab (sessionStorage) and sends it only in the Authorization header. 503 when the page was not built.',
    auth: 'none',
    response: { status: 200, description: 'The page.', contentType: 'text/html' },
    errors: ['service_unavailable'],
  },
  {
    method: 'GET',
    path: '/dashboard/assets/{file}',
    tag: 'system',
    summary: "The dashboard's hashed scripts and styles (cached for a year)",
    auth: 'none',
    response: {
      status: 200,
      description: 'The file (text/javascript or text/css).',
      contentType: 'text/javascript',
    },
    errors: ['not_found'],
  },
  {
    method: 'GET',
    path: '/escrow/events/public',
    tag: 'escrow',
    summary: 'Every escrow event, public fields only (Server-Sent Events)',
    description: PUBLIC_FEED_DESCRIPTION,
    auth: 'none',
    response: {
      status: 200,
      description: 'An event stream.',
      contentType: 'text/event-stream',
      example: `id: 42\nevent: released\ndata: {"id":"6f1c1e52-8a40-4a3e-9d7e-0d9b5f3f8c11","type":"released","stream":"escrow-${ESCROW}","occurred_at":"${AT}","data":{"escrow_id":"${ESCROW}","status":"released","amount_micros":"5000000","commission_micros":"50000"}}\n\n`,
    },
    errors: ['invalid_request', 'rate_limited', 'service_unavailable'],
  },
  {
    method: 'GET',
    path: '/jobs/events/public',
    tag: 'jobs',
    summary: 'Every job-board event, public fields only (Server-Sent Events)',
    description: PUBLIC_FEED_DESCRIPTION,
    auth: 'none',
    response: {
      status: 200,
      description: 'An event stream.',
      contentType: 'text/event-stream',
      example: `id: 7\nevent: job_posted\ndata: {"id":"0b6f0a4e-3f0e-4c5e-9a51-2f8a3c1d9e77","type":"job_posted","stream":"job-job_1a2b3c4d5e6f7a8b","occurred_at":"${AT}","data":{"job_id":"job_1a2b3c4d5e6f7a8b"}}\n\n`,
    },
    errors: ['invalid_request', 'rate_limited', 'service_unavailable'],
  },

  {
    method: 'GET',
    path: '/admin/accounts',
    tag: 'operators',
    summary: 'Every system account, the largest agent accounts and the books sum (must be 0)',
    description:
      'The system accounts (world, faucet_treasury, house_revenue, escrow_holding) and the `limit` largest agent accounts (available + held), with the sum of `available` over every account (`books_sum_micros`: "0" when the books balance) and the agents\' held total (equals escrow_holding). Amounts are exact micro-dollar strings, plus USD numbers.',
    auth: 'admin',
    query: accountsQuerySchema,
    response: {
      status: 200,
      description: 'Balances.',
      example: {
        books_sum_micros: '0',
        books_sum_usd: 0,
        agents_held_micros: '5000000',
        agent_count: 2,
        accounts: [
          {
            account: 'world',
            kind: 'system',
            available_micros: '-1000000000',
            held_micros: '0',
            available_usd: -1000,
          },
          {
            account: CREATOR,
            kind: 'agent',
            available_micros: '15000000',
            held_micros: '5000000',
            available_usd: 15,
          },
        ],
      },
    },
    errors: ['invalid_request', ...ADMIN_ERRORS],
  },
  {
    method: 'GET',
    path: '/admin/deadlines',
    tag: 'operators',
    summary: "The timeout saga's lag and the next escrow deadlines due",
    description:
      "By the database clock (the saga's one clock): `overdue_count` deadlines are due and not yet turned into a refund (funded) or an auto-release (completed); `lag_ms` is how late the oldest of them is (0 when none). `next` lists the earliest deadlines, overdue first.",
    auth: 'admin',
    query: deadlinesQuerySchema,
    response: {
      status: 200,
      description: 'The saga.',
      example: {
        now: AT,
        overdue_count: 0,
        pending_count: 1,
        lag_ms: 0,
        next: [
          {
            escrow_id: ESCROW,
            due_at: AT,
            status: 'completed',
            action: 'auto_release',
            amount_micros: '5000000',
          },
        ],
      },
    },
    errors: ['invalid_request', ...ADMIN_ERRORS],
  },
  {
    method: 'GET',
    path: '/admin/verify/last',
    tag: 'operators',
    summary: 'The last `ops verify` result (ledgers, replays and the cross-checks), as ops recorded it',
    auth: 'admin',
    response: {
      status: 200,
      description: 'The last run: counts per check, at most 20 violation lines.',
      example: {
        finished_at: AT,
        selection: 'all',
        services_verified: ['casino', 'faucet', 'escrow', 'market'],
        ok: true,
        exit_code: 0,
        violations: 0,
        checks: [
          { name: 'casino', status: 'ran', violations: 0 },
          { name: 'holds vs escrows', status: 'ran', violations: 0 },
        ],
        lines: [],
        lines_truncated: false,
      },
    },
    errors: ['no_verify_result'],
  },
  {
    method: 'GET',
    path: '/admin/streams',
    tag: 'operators',
    summary: 'JetStream streams and their consumers (lag, redeliveries, dead letters), like `ops streams`',
    auth: 'admin',
    response: {
      status: 200,
      description: 'Every contract stream and the dead-letter stream.',
      example: {
        streams: [
          {
            name: 'ESCROW_EVENTS',
            exists: true,
            messages: 1200,
            bytes: 480000,
            last_sequence: 1200,
            last_at: AT,
            consumers: [
              {
                name: 'market-escrow',
                durable: true,
                lag: 0,
                pending: 0,
                ack_pending: 0,
                redelivered: 0,
                dead_letters: 0,
              },
            ],
            consumers_not_listed: 0,
          },
        ],
      },
    },
    errors: ADMIN_ERRORS,
  },
  {
    method: 'GET',
    path: '/admin/dead-letters',
    tag: 'operators',
    summary: 'Dead-lettered events, oldest first, like `ops dlq list`',
    auth: 'admin',
    query: deadLettersQuerySchema,
    response: {
      status: 200,
      description: 'The dead letters.',
      example: {
        dead_letters: [
          {
            sequence: 3,
            consumer: 'market-escrow',
            subject: 'escrow.events.released',
            original_stream: 'ESCROW_EVENTS',
            original_sequence: '118',
            deliveries: '10',
            event_id: '6f1c1e52-8a40-4a3e-9d7e-0d9b5f3f8c11',
            failed_at: AT,
            error: 'relation "market.jobs" does not exist',
          },
        ],
        limit: 100,
      },
    },
    errors: ['invalid_request', ...ADMIN_ERRORS],
  },
  {
    method: 'POST',
    path: '/admin/dead-letters/{sequence}/redrive',
    tag: 'operators',
    summary:
      'Re-drive one dead letter: republish it to its original subject, then delete it (`ops dlq redrive`)',
    description:
      'The consumer that failed processes the event again; every other consumer recognises its event id and skips it. A repeated re-drive is dropped by the broker (`duplicate: true`). Fix the cause first, or it comes back.',
    auth: 'admin',
    response: {
      status: 200,
      description: 'Republished.',
      example: {
        sequence: 3,
        consumer: 'market-escrow',
        subject: 'escrow.events.released',
        stream: 'ESCROW_EVENTS',
        stream_sequence: 1201,
        duplicate: false,
      },
    },
    errors: ['invalid_request', 'not_found', ...ADMIN_ERRORS],
  },
  {
    method: 'GET',
    path: '/admin/escrow/{id}',
    tag: 'operators',
    summary: 'One escrow with every field and its whole history, amounts in micros and USD',
    auth: 'admin',
    response: {
      status: 200,
      description: 'The escrow.',
      example: {
        escrow_id: ESCROW,
        status: 'released',
        creator_id: CREATOR,
        counterparty_id: WORKER,
        description: 'BTC/gold correlation',
        amount_micros: '5000000',
        amount_usd: 5,
        commission_micros: '50000',
        net_to_counterparty_micros: '4950000',
        payout: {
          counterparty_micros: '4950000',
          commission_micros: '50000',
          house_micros: '50000',
          referrer_micros: '0',
          referrer_id: null,
          creator_micros: '0',
        },
        created_at: AT,
        auto_release_at: null,
        events: [
          { type: 'funded', at: AT, actor: 'system' },
          { type: 'completed', at: AT, actor: WORKER },
          { type: 'released', at: AT, actor: CREATOR },
        ],
      },
    },
    errors: ['invalid_request', 'not_found', ...ADMIN_ERRORS],
  },
  {
    method: 'GET',
    path: '/admin/agents/{id}',
    tag: 'operators',
    summary: "One agent's balances, lifetime totals and latest 100 ledger entries (micros)",
    auth: 'admin',
    response: {
      status: 200,
      description: 'The agent.',
      example: {
        agent_id: CREATOR,
        available_micros: '15000000',
        held_micros: '0',
        available_usd: 15,
        lifetime: {
          deposited_micros: '20000000',
          withdrawn_micros: '0',
          escrowed_micros: '5000000',
          earned_micros: '0',
          fees_micros: '0',
        },
        entries: [
          {
            type: 'hold',
            amount_micros: '-5000000',
            balance_after_micros: '15000000',
            reason: 'escrow',
            service: 'escrow',
            operation_id: ESCROW,
            counterparty: null,
            at: AT,
          },
        ],
      },
    },
    errors: ['invalid_request', 'agent_not_found', ...ADMIN_ERRORS],
  },
];
