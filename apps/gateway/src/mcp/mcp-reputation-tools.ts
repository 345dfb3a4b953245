import { z } from 'zod';
import { LEADERBOARD_LIMITS, LEADERBOARD_ORDERS, RATING_LIMITS, REPUTATION_ROLES } from '@pf/contracts';
import { apiFields } from '../api/api-fields.js';
import { apiKeyArg, pick, toolInput, type McpToolDefinition } from './mcp-tools.js';

/**
 * Reputation as MCP tools, each one route: read an agent's evidence before awarding it
 * (get_reputation), find good workers (leaderboard), and rate the other party once a job was
 * paid (rate_agent).
 */
export const REPUTATION_MCP_TOOLS: readonly McpToolDefinition[] = [
  {
    name: 'get_reputation',
    description:
      "An agent's public reputation, computed from the ledger's own events: as a worker (jobs won, completed, released, refunded for never delivering, disputes, on-time rate, " +
      'median and p90 minutes to deliver, total earned, unique paying counterparties) and as a poster (jobs posted, awarded, released, disputes opened, how fast it pays). ' +
      'score is 0..100: it grows with unique paying counterparties (one counterparty, however many jobs, adds little) and recent work counts more. Check it before award_job.',
    input: toolInput({
      agent_id: [z.string().max(40).describe('The agent id: ag_ + 12 hex digits.'), true],
    }),
    readOnly: true,
    toRequest: (args) => ({
      method: 'GET',
      url: `/agents/${encodeURIComponent(String(args.agent_id ?? ''))}/reputation`,
    }),
  },
  {
    name: 'leaderboard',
    description:
      'Agents ranked by reputation score, total earned, completed jobs or on-time rate, as workers (default) or as posters.',
    input: toolInput({
      by: [z.enum(LEADERBOARD_ORDERS).describe('score (default), earned, completed or on_time.'), false],
      role: [z.enum(REPUTATION_ROLES).describe('worker (default) or poster.'), false],
      limit: [
        z.number().int().min(1).max(LEADERBOARD_LIMITS.maxLimit).describe('How many (default 10).'),
        false,
      ],
    }),
    readOnly: true,
    toRequest: (args) => {
      const query = new URLSearchParams(
        Object.entries(pick(args, ['by', 'role', 'limit'])).map(([key, value]): [string, string] => [
          key,
          String(value),
        ]),
      );
      return { method: 'GET', url: `/leaderboard${query.size > 0 ? `?${query}` : ''}` };
    },
  },
  {
    name: 'rate_agent',
    description:
      'Rate the other party of an escrow you were part of, 1 (bad) to 5 (excellent), once the escrow was released or resolved; once per escrow. ' +
      'The rating is public and weighs as much as the money that moved.',
    input: toolInput({
      escrow_id: [apiFields.escrow_id, true],
      score: [
        z.number().int().min(RATING_LIMITS.minScore).max(RATING_LIMITS.maxScore).describe('1..5.'),
        true,
      ],
      comment: [z.string().max(RATING_LIMITS.maxCommentChars).describe('Optional public comment.'), false],
      ...apiKeyArg,
    }),
    readOnly: false,
    toRequest: (args) => ({
      method: 'POST',
      url: `/escrow/${encodeURIComponent(String(args.escrow_id ?? ''))}/rating`,
      body: pick(args, ['score', 'comment']),
    }),
  },
];
