import type { RouteDoc } from './openapi.js';

/** OpenAPI entries of the dashboard page and its public live feeds; docs/API.md "Dashboard" has the prose. */

const ESCROW = 'esc_5b0e7c9d12a4f836';
const AT = '2025-06-01T12:00:00.000Z';

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
];
