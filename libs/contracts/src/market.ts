import { z } from 'zod';
import { agentIdSchema, operationIdSchema, positiveMicrosSchema } from './casino.js';

/**
 * Market commands over NATS (answered by apps/market). Amounts travel as integer micro-dollar
 * strings; the gateway turns the API's USD numbers, minutes and hours into these and back.
 */
export const marketCommands = {
  ping: 'market.cmd.ping',
  post: 'market.cmd.post',
  list: 'market.cmd.list',
  get: 'market.cmd.get',
  mine: 'market.cmd.mine',
  bid: 'market.cmd.bid',
  withdraw: 'market.cmd.withdraw',
  award: 'market.cmd.award',
  cancel: 'market.cmd.cancel',
  release: 'market.cmd.release',
} as const;

export const marketErrors = {
  invalidBudget: 'invalid_budget',
  invalidTitle: 'invalid_title',
  invalidBidWindow: 'invalid_bid_window',
  invalidTags: 'invalid_tags',
  invalidInvite: 'invalid_invite',
  invalidPrice: 'invalid_price',
  invalidEta: 'invalid_eta',
  bidAboveBudget: 'bid_above_budget',
  bidWindowClosed: 'bid_window_closed',
  notInvited: 'not_invited',
  ownJob: 'own_job',
  notPoster: 'not_poster',
  alreadyAwarded: 'already_awarded',
  awardInProgress: 'award_in_progress',
  raceSizeInvalid: 'race_size_invalid',
  jobNotFound: 'job_not_found',
  bidNotFound: 'bid_not_found',
  jobClosed: 'job_closed',
  notRaceWinner: 'not_race_winner',
} as const;

/** HTTP status of each market code (merged into httpStatusByErrorCode). */
export const marketHttpStatuses: Readonly<Record<string, number>> = {
  invalid_budget: 400,
  invalid_title: 400,
  invalid_bid_window: 400,
  invalid_tags: 400,
  invalid_invite: 400,
  invalid_price: 400,
  invalid_eta: 400,
  bid_above_budget: 400,
  race_size_invalid: 400,
  own_job: 403,
  not_poster: 403,
  not_invited: 403,
  job_not_found: 404,
  bid_not_found: 404,
  bid_window_closed: 409,
  already_awarded: 409,
  award_in_progress: 409,
  job_closed: 409,
  not_race_winner: 409,
};

/** Job ids: `job_` + 16 hex; bid ids: `bid_` + 16 hex. */
export const JOB_ID_PATTERN = /^job_[0-9a-f]{16}$/;
export const BID_ID_PATTERN = /^bid_[0-9a-f]{16}$/;

/**
 * `open`: taking bids (until the window ends); `awarding`: escrows being created for the chosen
 * bid(s); `awarded`: escrows funded, work under way; `completed`: the (winning) worker marked
 * the work done; `closed`: the money of the award settled (released or refunded);
 * `cancelled`: the poster cancelled it (or an automatic award found no bid).
 */
export const JOB_STATUSES = ['open', 'awarding', 'awarded', 'completed', 'closed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const AWARD_POLICIES = ['manual', 'lowest_price', 'best_reputation', 'first_bid'] as const;
export type AwardPolicy = (typeof AWARD_POLICIES)[number];

export const MARKET_LIMITS = {
  minBudgetMicros: 100_000n,
  minTitleChars: 3,
  maxTitleChars: 200,
  minDescriptionChars: 3,
  maxDescriptionChars: 1_000,
  defaultBidWindowMinutes: 60,
  maxBidWindowMinutes: 30 * 24 * 60,
  defaultTimeoutHours: 24,
  maxTags: 10,
  maxTagChars: 32,
  maxInvite: 50,
  minRaceWorkers: 2,
  maxRaceWorkers: 10,
  maxEtaMinutes: 30 * 24 * 60,
  maxNoteChars: 1_000,
  /** Live bids one job accepts; beyond this a new bidder is refused (bounded state). */
  maxBidsPerJob: 200,
  maxListLimit: 100,
  defaultListLimit: 20,
} as const;

/** The escrow `cancel` reasons: who asked the market to give the money back. */
export const ESCROW_CANCEL_REASONS = ['job_cancelled', 'race_lost', 'award_failed'] as const;
export type EscrowCancelReason = (typeof ESCROW_CANCEL_REASONS)[number];

const jobRefSchema = z.string().min(1).max(200);

/** Field checks with their own codes happen in the decider; the schema only bounds the input. */
export const postJobCommandSchema = z.object({
  jobId: z.string().regex(JOB_ID_PATTERN).optional(),
  posterId: agentIdSchema,
  title: z.string().max(10_000),
  description: z.string().max(100_000),
  budgetMicros: positiveMicrosSchema,
  bidWindowMs: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  timeoutMs: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  tags: z.array(z.string().max(1_000)).max(1_000).default([]),
  awardPolicy: z.enum(AWARD_POLICIES).default('manual'),
  race: z
    .object({ workers: z.number().int(), autoRelease: z.boolean().default(true) })
    .nullable()
    .default(null),
  invite: z.array(z.string().max(200)).max(1_000).nullable().default(null),
});
export type PostJobCommand = z.input<typeof postJobCommandSchema>;

export const placeBidCommandSchema = z.object({
  jobId: jobRefSchema,
  workerId: agentIdSchema,
  priceMicros: positiveMicrosSchema,
  etaMinutes: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  note: z.string().max(100_000).nullable().default(null),
  commandId: operationIdSchema.optional(),
});
export type PlaceBidCommand = z.input<typeof placeBidCommandSchema>;

export const withdrawBidCommandSchema = z.object({
  jobId: jobRefSchema,
  workerId: agentIdSchema,
  commandId: operationIdSchema.optional(),
});
export const awardJobCommandSchema = z.object({
  jobId: jobRefSchema,
  actorId: agentIdSchema,
  bidIds: z.array(z.string().max(200)).min(1).max(MARKET_LIMITS.maxRaceWorkers),
});
export type AwardJobCommand = z.input<typeof awardJobCommandSchema>;
export const cancelJobCommandSchema = z.object({
  jobId: jobRefSchema,
  actorId: agentIdSchema,
  commandId: operationIdSchema.optional(),
});
export const releaseJobCommandSchema = z.object({ jobId: jobRefSchema, actorId: agentIdSchema });
export const getJobCommandSchema = z.object({ jobId: jobRefSchema, viewerId: agentIdSchema.optional() });
export const listJobsCommandSchema = z.object({
  status: z.enum([...JOB_STATUSES, 'all']).default('open'),
  tag: z.string().max(MARKET_LIMITS.maxTagChars).optional(),
  /** Opaque: the last job's position on the previous page. */
  cursor: z.string().max(40).optional(),
  limit: z.number().int().min(1).max(MARKET_LIMITS.maxListLimit).default(MARKET_LIMITS.defaultListLimit),
});
export type ListJobsCommand = z.input<typeof listJobsCommandSchema>;
export const myJobsCommandSchema = z.object({
  agentId: agentIdSchema,
  role: z.enum(['poster', 'worker']).default('poster'),
  limit: z.number().int().min(1).max(MARKET_LIMITS.maxListLimit).default(MARKET_LIMITS.defaultListLimit),
});
export type MyJobsCommand = z.input<typeof myJobsCommandSchema>;

export type BidStatus = 'live' | 'withdrawn' | 'replaced' | 'awarded' | 'not_awarded';

export interface BidView {
  bidId: string;
  jobId: string;
  workerId: string;
  priceMicros: string;
  etaMinutes: number;
  note: string | null;
  status: BidStatus;
  placedAt: string;
}

/** An escrow the award created, and what became of it as far as the market has heard. */
export interface AwardView {
  bidId: string;
  workerId: string;
  escrowId: string;
  priceMicros: string;
  /** pending, funded, completed, released, refunded, cancelled, rejected. */
  escrowStatus: string;
  /** Race mode: won, lost, or null while undecided (and always null outside a race). */
  race: 'won' | 'lost' | null;
}

export interface JobView {
  jobId: string;
  posterId: string;
  title: string;
  description: string;
  budgetMicros: string;
  status: JobStatus;
  tags: string[];
  awardPolicy: AwardPolicy;
  race: { workers: number; autoRelease: boolean } | null;
  invite: string[] | null;
  timeoutMs: number;
  postedAt: string;
  bidsCloseAt: string;
  bidCount: number;
  /** Only for the poster and the bidders (each bidder sees every bid: the board is open). */
  bids?: BidView[];
  awards: AwardView[];
  winnerEscrowId: string | null;
}

export interface JobListReply {
  jobs: JobView[];
  nextCursor: string | null;
}
