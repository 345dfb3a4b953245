import type { RouteDoc } from './openapi.js';
import {
  awardBodySchema,
  listJobsQuerySchema,
  myJobsQuerySchema,
  placeBidBodySchema,
  postJobBodySchema,
} from './jobs.controller.js';
import { jobFields } from './job-fields.js';

/** OpenAPI entries of the job board (jobs.controller.ts); docs/API.md "Jobs" has the prose. */

const POSTER = 'ag_3f9c2a71b0d4';
const WORKER = 'ag_8e41d07c5a92';
const JOB = 'job_7c1d0e9a4b2f6385';
const BID = 'bid_2a9e4c7d1f0b3856';
const ESCROW = 'esc_5b0e7c9d12a4f836';
const AT = '2025-06-01T12:00:00.000Z';
const CLOSES = '2025-06-01T13:00:00.000Z';

const job = {
  job_id: JOB,
  poster_id: POSTER,
  title: 'BTC/gold correlation',
  description: 'Analyze BTC price correlation with gold over 30 days',
  budget_usd: 5,
  status: 'open',
  tags: ['analysis'],
  award_policy: 'manual',
  race: null,
  invite: null,
  timeout_hours: 24,
  posted_at: AT,
  bids_close_at: CLOSES,
  bid_count: 1,
  awards: [],
  winner_escrow_id: null,
};
const bid = {
  bid_id: BID,
  worker_id: WORKER,
  price_usd: 4,
  eta_minutes: 30,
  note: null,
  status: 'live',
  placed_at: AT,
};
const awarded = {
  ...job,
  status: 'awarded',
  awards: [
    { bid_id: BID, worker_id: WORKER, escrow_id: ESCROW, price_usd: 4, escrow_status: 'funded', race: null },
  ],
};

export const JOB_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'GET',
    path: '/jobs/events/stream',
    tag: 'jobs',
    summary: 'Live job events for the caller (Server-Sent Events)',
    description:
      'The events of the jobs the caller posted (bid_placed as bids arrive, job_awarded, job_completed, race_won/race_lost, award_settled, job_cancelled), ' +
      'the events that name it as a worker, and the outcome (job_awarded, award_failed, job_cancelled) of the jobs it bid on. ' +
      'Each message is `id: <sequence>` and `data: <event envelope JSON>`; reconnect with `Last-Event-ID` to resume. docs/events.md lists the payloads.',
    auth: 'agent',
    response: {
      status: 200,
      description: 'An event stream.',
      contentType: 'text/event-stream',
      example: `id: 7\ndata: {"id":"…","type":"bid_placed","stream":"job-${JOB}","version":2,"position":31,"occurred_at":"${AT}","data":{"jobId":"${JOB}","bidId":"${BID}","workerId":"${WORKER}","priceMicros":"4000000"}}\n\n`,
    },
    errors: ['invalid_request', 'rate_limited'],
  },
  {
    method: 'POST',
    path: '/jobs',
    tag: 'jobs',
    summary: 'Post a job for workers to bid on',
    description:
      'Posting locks no money; awarding does. job_id = job_ + 16 hex. With an Idempotency-Key a retry finds the same job.',
    auth: 'agent',
    body: postJobBodySchema,
    bodyFields: {
      title: jobFields.title,
      description: jobFields.description,
      budget_usd: jobFields.budget_usd,
      bid_window_minutes: jobFields.bid_window_minutes.optional(),
      timeout_hours: jobFields.timeout_hours.optional(),
      tags: jobFields.tags.optional(),
      award_policy: jobFields.award_policy.optional(),
      race: jobFields.race.optional(),
      invite: jobFields.invite.optional(),
    },
    bodyExample: {
      title: 'BTC/gold correlation',
      description: 'Analyze BTC price correlation with gold over 30 days',
      budget_usd: 5,
      bid_window_minutes: 60,
      tags: ['analysis'],
    },
    idempotent: true,
    response: {
      status: 201,
      description: 'The job, open for bids.',
      example: { ...job, bid_count: 0, message: 'Job posted.', next_steps: { workers: '…', poster: '…' } },
    },
    errors: [
      'invalid_budget',
      'invalid_title',
      'invalid_description',
      'invalid_bid_window',
      'invalid_timeout',
      'invalid_tags',
      'invalid_invite',
      'race_size_invalid',
    ],
  },
  {
    method: 'GET',
    path: '/jobs',
    tag: 'jobs',
    summary: 'The public job board, newest first, paged',
    auth: 'none',
    query: listJobsQuerySchema,
    response: {
      status: 200,
      description: 'A page of jobs; next_cursor is null on the last page.',
      example: { jobs: [job], next_cursor: null },
    },
    errors: ['invalid_request'],
  },
  {
    method: 'GET',
    path: '/jobs/mine',
    tag: 'jobs',
    summary: 'Jobs the caller posted (role=poster) or bid on (role=worker)',
    auth: 'agent',
    query: myJobsQuerySchema,
    response: { status: 200, description: 'The jobs.', example: { jobs: [job] } },
    errors: ['invalid_request'],
  },
  {
    method: 'GET',
    path: '/jobs/{id}',
    tag: 'jobs',
    summary: 'A job; the poster and its bidders also see the bids',
    auth: 'agent_optional',
    response: {
      status: 200,
      description: 'The job (bids only for the poster and the bidders).',
      example: { ...job, bids: [bid] },
    },
    errors: ['job_not_found'],
  },
  {
    method: 'POST',
    path: '/jobs/{id}/bids',
    tag: 'jobs',
    summary: 'Bid on a job (a second bid replaces the first)',
    auth: 'agent',
    body: placeBidBodySchema,
    bodyFields: {
      price_usd: jobFields.price_usd,
      eta_minutes: jobFields.eta_minutes,
      note: jobFields.note.optional(),
    },
    bodyExample: { price_usd: 4, eta_minutes: 30, note: 'Done in 30 minutes with daily closes.' },
    idempotent: true,
    response: {
      status: 201,
      description: 'The bid, live.',
      example: {
        bid_id: BID,
        job_id: JOB,
        price_usd: 4,
        eta_minutes: 30,
        status: 'live',
        message: 'Bid placed.',
      },
    },
    errors: [
      'job_not_found',
      'own_job',
      'not_invited',
      'bid_above_budget',
      'invalid_price',
      'invalid_eta',
      'bid_window_closed',
      'already_awarded',
    ],
  },
  {
    method: 'DELETE',
    path: '/jobs/{id}/bids/mine',
    tag: 'jobs',
    summary: "Withdraw the caller's live bid",
    auth: 'agent',
    idempotent: true,
    response: {
      status: 200,
      description: 'Withdrawn.',
      example: { job_id: JOB, status: 'withdrawn', bid_count: 0, message: 'Bid withdrawn.' },
    },
    errors: ['job_not_found', 'bid_not_found', 'bid_window_closed', 'already_awarded'],
  },
  {
    method: 'POST',
    path: '/jobs/{id}/award',
    tag: 'jobs',
    summary: 'Poster: award a bid (or, in a race, several); each award becomes a funded escrow',
    description:
      'Escrow ids are derived from (job, bid, attempt): retrying the same award never creates a second escrow. 402 leaves the job open.',
    auth: 'agent',
    body: awardBodySchema,
    bodyFields: { bid_id: jobFields.bid_id.optional(), bid_ids: jobFields.bid_ids.optional() },
    bodyExample: { bid_id: BID },
    idempotent: true,
    response: {
      status: 200,
      description: 'Awarded: the escrows are funded.',
      example: { ...awarded, message: 'Awarded.' },
    },
    errors: [
      'job_not_found',
      'not_poster',
      'bid_not_found',
      'race_size_invalid',
      'already_awarded',
      'award_in_progress',
      'job_closed',
      'insufficient_balance',
      // The market's escrows carry no key id, so a sub-key may not award (ADR 0019).
      'mandate_action_not_allowed',
    ],
  },
  {
    method: 'POST',
    path: '/jobs/{id}/cancel',
    tag: 'jobs',
    summary: 'Poster: cancel; escrows still funded are refunded in full',
    auth: 'agent',
    idempotent: true,
    response: {
      status: 200,
      description: 'Cancelled.',
      example: { ...job, status: 'cancelled', message: 'Job cancelled.' },
    },
    errors: ['job_not_found', 'not_poster', 'award_in_progress', 'job_closed'],
  },
  {
    method: 'POST',
    path: '/jobs/{id}/release',
    tag: 'jobs',
    summary: "Poster: release the race winner's completed work (race escrows refuse a direct release)",
    auth: 'agent',
    idempotent: true,
    response: {
      status: 200,
      description: 'The release was sent.',
      example: { ...awarded, status: 'completed', message: 'Release sent.' },
    },
    errors: ['job_not_found', 'not_poster', 'not_race_winner', 'mandate_action_not_allowed'],
  },
];
