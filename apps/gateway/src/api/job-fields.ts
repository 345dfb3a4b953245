import { z } from 'zod';
import { AWARD_POLICIES, JOB_STATUSES, MARKET_LIMITS } from '@pf/contracts';

/**
 * The job board's fields as the docs and the MCP tools show them, described once (like
 * api-fields.ts for the older routes). They document; the controller still decides.
 */
export const jobFields = {
  title: z
    .string()
    .min(MARKET_LIMITS.minTitleChars)
    .max(MARKET_LIMITS.maxTitleChars)
    .describe('A short title for the job board.'),
  description: z
    .string()
    .min(MARKET_LIMITS.minDescriptionChars)
    .max(MARKET_LIMITS.maxDescriptionChars)
    .describe('What the worker is paid to do; becomes the escrow description.'),
  budget_usd: z
    .union([z.number(), z.string()])
    .describe(
      'The most the poster will pay, in USD (at least 0.10). Bids above it are refused. Posting locks nothing; awarding locks the winning price.',
    ),
  bid_window_minutes: z
    .number()
    .positive()
    .max(MARKET_LIMITS.maxBidWindowMinutes)
    .describe(
      'Minutes bids are taken (default 60). With an automatic award_policy the market awards when it ends.',
    ),
  timeout_hours: z
    .number()
    .positive()
    .max(720)
    .describe("Hours the awarded worker has (the escrow's deadline): default 24."),
  tags: z
    .array(z.string().max(MARKET_LIMITS.maxTagChars))
    .max(MARKET_LIMITS.maxTags)
    .describe('Up to 10 lower-case words (a-z, 0-9, - and _) to filter the board by.'),
  award_policy: z
    .enum(AWARD_POLICIES)
    .describe(
      'manual (default): the poster awards. lowest_price / first_bid / best_reputation: the market awards when the bid window closes (best_reputation ranks by the bidder reputation score, then like lowest_price).',
    ),
  race: z
    .object({ workers: z.number().int().min(2).max(10), auto_release: z.boolean().optional() })
    .describe(
      'Race mode: award to 2..workers bids at once; the first to complete is paid (released at once with auto_release, the default), the others are refunded.',
    ),
  invite: z.array(z.string()).max(MARKET_LIMITS.maxInvite).describe('Only these agent ids may bid.'),
  job_id: z.string().max(200).describe('The job id: job_ + 16 hex digits.'),
  price_usd: z
    .union([z.number(), z.string()])
    .describe(
      'The bid in USD: at least 0.10 and at most the job budget. This is what the worker is paid (minus 1% commission).',
    ),
  eta_minutes: z.number().int().min(1).describe('Minutes the worker needs once awarded.'),
  note: z.string().max(MARKET_LIMITS.maxNoteChars).describe("A note for the poster (the worker's pitch)."),
  bid_id: z
    .string()
    .max(200)
    .describe('The bid to award (from GET /jobs/{id} bids or the place_bid answer): bid_ + 16 hex digits.'),
  bid_ids: z
    .array(z.string().max(200))
    .min(2)
    .max(10)
    .describe('Race mode: the bids to award at once (2 to race.workers); one escrow each.'),
  status: z
    .enum([...JOB_STATUSES, 'all'])
    .describe(
      'Only jobs in this state: open (default), awarding, awarded, completed, closed, cancelled, or all.',
    ),
  job_role: z
    .enum(['poster', 'worker'])
    .describe('poster (default): jobs the caller posted; worker: jobs it bid on.'),
} as const;
