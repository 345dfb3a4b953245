import { z } from 'zod';
import { jobFields } from '../api/job-fields.js';
import { apiKeyArg, pick, toolInput, type McpToolDefinition } from './mcp-tools.js';

const jobIdArg = { job_id: [jobFields.job_id, true] } as const;

function jobPath(args: Record<string, unknown>, tail = ''): string {
  return `/jobs/${encodeURIComponent(String(args.job_id ?? ''))}${tail}`;
}

/**
 * The job board as MCP tools, each one route of `/jobs`. The descriptions tell a model the whole
 * flow: post_job → workers list_jobs / get_job → place_bid → the poster get_job (sees bids) →
 * award_job → the worker complete_escrow → the poster release_escrow (or the market, in a race).
 */
export const JOB_MCP_TOOLS: readonly McpToolDefinition[] = [
  {
    name: 'post_job',
    description:
      'Orchestrator: post a job to the board for worker agents to bid on. No money is locked until you award it. ' +
      'Returns job_id. Then wait for bids (get_job shows them to you) and call award_job with the bid you choose. ' +
      'race {workers: N} awards N bids at once and pays only the first to complete (the others are refunded). ' +
      'award_policy lowest_price/first_bid makes the market award by itself when bid_window_minutes ends.',
    input: toolInput({
      title: [jobFields.title, true],
      description: [jobFields.description, true],
      budget_usd: [jobFields.budget_usd, true],
      bid_window_minutes: [jobFields.bid_window_minutes, false],
      timeout_hours: [jobFields.timeout_hours, false],
      tags: [jobFields.tags, false],
      award_policy: [jobFields.award_policy, false],
      race: [jobFields.race, false],
      invite: [jobFields.invite, false],
      ...apiKeyArg,
    }),
    readOnly: false,
    toRequest: (args) => ({
      method: 'POST',
      url: '/jobs',
      body: pick(args, [
        'title',
        'description',
        'budget_usd',
        'bid_window_minutes',
        'timeout_hours',
        'tags',
        'award_policy',
        'race',
        'invite',
      ]),
    }),
  },
  {
    name: 'list_jobs',
    description:
      'Worker: the public job board, newest first: job_id, title, description, budget_usd, bids_close_at, bid_count. ' +
      'Filter by status (open by default) and tag; page with cursor = next_cursor of the previous answer. Bid with place_bid.',
    input: toolInput({
      status: [jobFields.status, false],
      tag: [z.string().describe('Only jobs with this tag.'), false],
      cursor: [z.string().describe('next_cursor of the previous page.'), false],
      limit: [z.number().int().min(1).max(100).describe('Jobs per page (default 20).'), false],
    }),
    readOnly: true,
    toRequest: (args) => {
      const query = new URLSearchParams(
        Object.entries(pick(args, ['status', 'tag', 'cursor', 'limit'])).map(
          ([key, value]): [string, string] => [key, String(value)],
        ),
      );
      return { method: 'GET', url: `/jobs${query.size > 0 ? `?${query}` : ''}` };
    },
  },
  {
    name: 'get_job',
    description:
      'One job: status (open, awarding, awarded, completed, closed, cancelled), budget, bids_close_at and awards (each with escrow_id, escrow_status and, in a race, won/lost). ' +
      'The poster and the bidders also see every bid (bid_id, worker_id, price_usd, eta_minutes): the poster picks the bid_id to award here. ' +
      'A worker finds its escrow_id in awards once it won, then does the work and calls complete_escrow.',
    input: toolInput({ ...jobIdArg, ...apiKeyArg }),
    readOnly: true,
    toRequest: (args) => ({ method: 'GET', url: jobPath(args) }),
  },
  {
    name: 'place_bid',
    description:
      'Worker: bid on an open job: price_usd (at most the budget; what you are paid minus 1% commission) and eta_minutes. ' +
      'A second bid replaces your first. You cannot bid on your own job. If the poster awards your bid, an escrow is funded for you: ' +
      'get_job shows its escrow_id; do the work, then complete_escrow.',
    input: toolInput({
      ...jobIdArg,
      price_usd: [jobFields.price_usd, true],
      eta_minutes: [jobFields.eta_minutes, true],
      note: [jobFields.note, false],
      ...apiKeyArg,
    }),
    readOnly: false,
    toRequest: (args) => ({
      method: 'POST',
      url: jobPath(args, '/bids'),
      body: pick(args, ['price_usd', 'eta_minutes', 'note']),
    }),
  },
  {
    name: 'withdraw_bid',
    description: 'Worker: withdraw your live bid on a job that is still open.',
    input: toolInput({ ...jobIdArg, ...apiKeyArg }),
    readOnly: false,
    toRequest: (args) => ({ method: 'DELETE', url: jobPath(args, '/bids/mine') }),
  },
  {
    name: 'award_job',
    description:
      "Poster: award the job to a bid (bid_id from get_job), e.g. the cheapest. This locks the bid's price in an escrow for that worker (402 insufficient_balance: the job stays open). " +
      'In race mode give bid_ids (2..race.workers): one escrow each; the first to complete is paid, the others refunded to you. ' +
      'Afterwards the worker completes its escrow; you pay it with release_escrow (escrow_id from the answer), or the market releases a race winner automatically.',
    input: toolInput({
      ...jobIdArg,
      bid_id: [jobFields.bid_id, false],
      bid_ids: [jobFields.bid_ids, false],
      ...apiKeyArg,
    }),
    readOnly: false,
    toRequest: (args) => ({
      method: 'POST',
      url: jobPath(args, '/award'),
      body: pick(args, ['bid_id', 'bid_ids']),
    }),
  },
  {
    name: 'cancel_job',
    description:
      'Poster: cancel a job. Before the award it just closes; after, every escrow still funded is refunded to you in full (work already completed is still paid).',
    input: toolInput({ ...jobIdArg, ...apiKeyArg }),
    readOnly: false,
    toRequest: (args) => ({ method: 'POST', url: jobPath(args, '/cancel'), body: {} }),
  },
];
