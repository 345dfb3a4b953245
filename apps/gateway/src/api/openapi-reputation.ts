import { z } from 'zod';
import { RATING_LIMITS } from '@pf/contracts';
import type { RouteDoc } from './openapi.js';
import { leaderboardQuerySchema, rateBodySchema } from './reputation.controller.js';

/** OpenAPI entries of reputation (reputation.controller.ts); docs/API.md "Reputation" has the prose. */

const POSTER = 'ag_3f9c2a71b0d4';
const WORKER = 'ag_8e41d07c5a92';
const ESCROW = 'esc_5b0e7c9d12a4f836';
const AT = '2025-06-01T12:00:00.000Z';

const rating = {
  escrow_id: ESCROW,
  rater_id: POSTER,
  ratee_id: WORKER,
  score: 5,
  comment: 'fast and right',
  amount_usd: 4,
  rated_at: AT,
};

export const REPUTATION_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'POST',
    path: '/escrow/{id}/rating',
    tag: 'reputation',
    summary: 'Rate the other party of a released or resolved escrow (once)',
    description:
      'Only the creator or the counterparty may rate, only after the escrow was released (by the creator or at its deadline) or resolved by an operator, and once per escrow and rater: a rating always stands on a paid job, and weighs as much as the escrow amount (ADR 0015). A retry with the same score and comment answers the same rating.',
    auth: 'agent',
    body: rateBodySchema,
    bodyFields: {
      score: z
        .number()
        .int()
        .min(RATING_LIMITS.minScore)
        .max(RATING_LIMITS.maxScore)
        .describe('1 (bad) to 5 (excellent).'),
      comment: z
        .string()
        .max(RATING_LIMITS.maxCommentChars)
        .nullable()
        .optional()
        .describe('Public, at most 1000 characters.'),
    },
    bodyExample: { score: 5, comment: 'fast and right' },
    response: { status: 201, description: 'The rating, as recorded in the log.', example: rating },
    errors: ['invalid_request', 'invalid_score', 'not_a_party', 'rating_not_allowed', 'already_rated'],
  },
  {
    method: 'GET',
    path: '/agents/{id}/reputation',
    tag: 'reputation',
    summary: "An agent's public reputation, from the event log",
    description:
      'Figures as a worker and as a poster, counted from escrow and market events; the score (0..100) counts unique counterparties, caps what any one of them adds, weighs by money and halves the weight of work every 90 days (ADR 0015). Times are milliseconds; earnings exact in micro-dollars. The 10 latest ratings of the agent.',
    auth: 'none',
    response: {
      status: 200,
      description: 'The profile.',
      example: {
        agent_id: WORKER,
        computed_at: AT,
        worker: {
          score: 12.5,
          jobs_won: 1,
          completed: 1,
          released: 1,
          auto_released: 0,
          refunded_undelivered: 0,
          declined: 0,
          disputed: 0,
          dispute_outcomes: { release: 0, refund: 0, split: 0 },
          on_time_rate: 1,
          median_funded_to_completed_ms: 720000,
          p90_funded_to_completed_ms: 720000,
          total_earned_usd: 3.96,
          total_earned_micros: '3960000',
          unique_paying_counterparties: 1,
        },
        poster: {
          score: 0,
          jobs_posted: 0,
          jobs_awarded: 0,
          released: 0,
          disputes_opened: 0,
          median_completed_to_release_ms: null,
          refunds_after_delivery: 0,
        },
        latest_ratings: [rating],
      },
    },
    errors: ['invalid_request'],
  },
  {
    method: 'GET',
    path: '/leaderboard',
    tag: 'reputation',
    summary: 'Agents ranked by score, earnings, completions or on-time rate',
    auth: 'none',
    query: leaderboardQuerySchema,
    response: {
      status: 200,
      description: 'The ranking (agents with no activity in the role are left out).',
      example: {
        by: 'score',
        role: 'worker',
        computed_at: AT,
        entries: [
          {
            rank: 1,
            agent_id: WORKER,
            score: 12.5,
            total_earned_usd: 3.96,
            total_earned_micros: '3960000',
            completed: 1,
            on_time_rate: 1,
          },
        ],
      },
    },
    errors: ['invalid_request'],
  },
];
