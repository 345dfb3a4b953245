import { z } from 'zod';
import { agentIdSchema } from './casino.js';
import { ESCROW_ID_PATTERN } from './escrow.js';

/**
 * Reputation (issue #16), answered by apps/market: profiles, ratings and leaderboards built only
 * from the event log (ADR 0015). Amounts are integer micro-dollar strings on the bus.
 */
export const reputationCommands = {
  rate: 'market.cmd.rate',
  reputation: 'market.cmd.reputation',
  leaderboard: 'market.cmd.leaderboard',
} as const;

export const reputationErrors = {
  invalidScore: 'invalid_score',
  notAParty: 'not_a_party',
  ratingNotAllowed: 'rating_not_allowed',
  alreadyRated: 'already_rated',
} as const;

/** HTTP status of each reputation code (merged into httpStatusByErrorCode). */
export const reputationHttpStatuses: Readonly<Record<string, number>> = {
  invalid_score: 400,
  not_a_party: 403,
  rating_not_allowed: 409,
  already_rated: 409,
};

export const RATING_LIMITS = { minScore: 1, maxScore: 5, maxCommentChars: 1000 } as const;
export const LEADERBOARD_ORDERS = ['score', 'earned', 'completed', 'on_time'] as const;
export type LeaderboardOrder = (typeof LEADERBOARD_ORDERS)[number];
export const REPUTATION_ROLES = ['worker', 'poster'] as const;
export type ReputationRole = (typeof REPUTATION_ROLES)[number];
export const LEADERBOARD_LIMITS = { defaultLimit: 10, maxLimit: 100 } as const;

export const rateCommandSchema = z.object({
  escrowId: z.string().regex(ESCROW_ID_PATTERN, 'must be an escrow id (esc_ + 16 hex)'),
  raterId: agentIdSchema,
  score: z.number().int().min(RATING_LIMITS.minScore).max(RATING_LIMITS.maxScore),
  comment: z.string().max(RATING_LIMITS.maxCommentChars).nullable().default(null),
});
export type RateCommand = z.input<typeof rateCommandSchema>;

export const reputationQuerySchema = z.object({ agentId: agentIdSchema });

export const leaderboardQuerySchema = z.object({
  by: z.enum(LEADERBOARD_ORDERS).default('score'),
  role: z.enum(REPUTATION_ROLES).default('worker'),
  limit: z.number().int().min(1).max(LEADERBOARD_LIMITS.maxLimit).default(LEADERBOARD_LIMITS.defaultLimit),
});
export type LeaderboardQuery = z.input<typeof leaderboardQuerySchema>;

export interface RatingView {
  escrowId: string;
  raterId: string;
  rateeId: string;
  score: number;
  comment: string | null;
  amountMicros: string;
  ratedAt: string;
}

export interface WorkerReputationView {
  jobsWon: number;
  completed: number;
  released: number;
  autoReleased: number;
  refundedUndelivered: number;
  declined: number;
  disputed: number;
  disputeOutcomes: { release: number; refund: number; split: number };
  onTimeRate: number | null;
  medianFundedToCompletedMs: number | null;
  p90FundedToCompletedMs: number | null;
  earnedMicros: string;
  uniquePayingCounterparties: number;
  score: number;
}

export interface PosterReputationView {
  jobsPosted: number;
  jobsAwarded: number;
  released: number;
  disputesOpened: number;
  medianCompletedToReleaseMs: number | null;
  refundsAfterDelivery: number;
  score: number;
}

export interface ReputationView {
  agentId: string;
  worker: WorkerReputationView;
  poster: PosterReputationView;
  latestRatings: RatingView[];
  computedAt: string;
}

export interface LeaderboardEntry {
  rank: number;
  agentId: string;
  score: number;
  earnedMicros: string;
  completed: number;
  onTimeRate: number | null;
}

export interface LeaderboardView {
  by: LeaderboardOrder;
  role: ReputationRole;
  entries: LeaderboardEntry[];
  computedAt: string;
}
