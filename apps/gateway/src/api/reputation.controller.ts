import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import {
  AGENT_ID_PATTERN,
  DomainError,
  ErrorCode,
  ESCROW_ID_PATTERN,
  LEADERBOARD_LIMITS,
  LEADERBOARD_ORDERS,
  RATING_LIMITS,
  REPUTATION_ROLES,
  reputationCommands,
  reputationErrors,
  type LeaderboardView,
  type RatingView,
  type ReputationView,
} from '@pf/contracts';
import { COMMAND_CLIENT } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import { AgentAuthGuard, type AuthenticatedRequest } from './auth.guard.js';
import { parseInput, usd } from './request.js';

export const rateBodySchema = z.object({
  score: z.unknown().optional(),
  comment: z.string().max(RATING_LIMITS.maxCommentChars).nullable().optional(),
});

export const leaderboardQuerySchema = z.object({
  by: z.enum(LEADERBOARD_ORDERS).default('score'),
  role: z.enum(REPUTATION_ROLES).default('worker'),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(LEADERBOARD_LIMITS.maxLimit)
    .default(LEADERBOARD_LIMITS.defaultLimit),
});

/**
 * Reputation (docs/API.md, "Reputation"; ADR 0015): public profiles and leaderboards computed
 * from the event log, and ratings bound to a released or resolved escrow.
 */
@Controller()
export class ReputationController {
  constructor(@Inject(COMMAND_CLIENT) private readonly commands: CommandClient) {}

  @Post('escrow/:id/rating')
  @HttpCode(201)
  @UseGuards(AgentAuthGuard)
  async rate(@Req() request: AuthenticatedRequest, @Param('id') escrowId: string, @Body() body: unknown) {
    const input = parseInput(rateBodySchema, body);
    if (!ESCROW_ID_PATTERN.test(escrowId))
      throw new DomainError(ErrorCode.invalidRequest, 'escrow id must be esc_ + 16 hex');
    const score = input.score;
    if (
      typeof score !== 'number' ||
      !Number.isInteger(score) ||
      score < RATING_LIMITS.minScore ||
      score > RATING_LIMITS.maxScore
    )
      throw new DomainError(reputationErrors.invalidScore, 'score must be an integer from 1 to 5');
    const rating = await this.commands.request<RatingView>(reputationCommands.rate, {
      escrowId,
      raterId: request.agentId,
      score,
      comment: input.comment ?? null,
    });
    return ratingBody(rating);
  }

  @Get('agents/:id/reputation')
  async reputation(@Param('id') agentId: string) {
    if (!AGENT_ID_PATTERN.test(agentId))
      throw new DomainError(ErrorCode.invalidRequest, 'agent id must be ag_ + 12 hex');
    return reputationBody(
      await this.commands.request<ReputationView>(reputationCommands.reputation, { agentId }),
    );
  }

  @Get('leaderboard')
  async leaderboard(@Query() query: unknown) {
    const input = parseInput(leaderboardQuerySchema, query, 'query');
    const board = await this.commands.request<LeaderboardView>(reputationCommands.leaderboard, input);
    return {
      by: board.by,
      role: board.role,
      computed_at: board.computedAt,
      entries: board.entries.map((entry) => ({
        rank: entry.rank,
        agent_id: entry.agentId,
        score: Math.round(entry.score * 100) / 100,
        total_earned_usd: usd(entry.earnedMicros),
        total_earned_micros: entry.earnedMicros,
        completed: entry.completed,
        on_time_rate: entry.onTimeRate,
      })),
    };
  }
}

function ratingBody(rating: RatingView) {
  return {
    escrow_id: rating.escrowId,
    rater_id: rating.raterId,
    ratee_id: rating.rateeId,
    score: rating.score,
    comment: rating.comment,
    amount_usd: usd(rating.amountMicros),
    rated_at: rating.ratedAt,
  };
}

export function reputationBody(view: ReputationView) {
  const { worker, poster } = view;
  return {
    agent_id: view.agentId,
    computed_at: view.computedAt,
    worker: {
      score: worker.score,
      jobs_won: worker.jobsWon,
      completed: worker.completed,
      released: worker.released,
      auto_released: worker.autoReleased,
      refunded_undelivered: worker.refundedUndelivered,
      declined: worker.declined,
      disputed: worker.disputed,
      dispute_outcomes: worker.disputeOutcomes,
      on_time_rate: worker.onTimeRate,
      median_funded_to_completed_ms: worker.medianFundedToCompletedMs,
      p90_funded_to_completed_ms: worker.p90FundedToCompletedMs,
      total_earned_usd: usd(worker.earnedMicros),
      total_earned_micros: worker.earnedMicros,
      unique_paying_counterparties: worker.uniquePayingCounterparties,
    },
    poster: {
      score: poster.score,
      jobs_posted: poster.jobsPosted,
      jobs_awarded: poster.jobsAwarded,
      released: poster.released,
      disputes_opened: poster.disputesOpened,
      median_completed_to_release_ms: poster.medianCompletedToReleaseMs,
      refunds_after_delivery: poster.refundsAfterDelivery,
    },
    latest_ratings: view.latestRatings.map(ratingBody),
  };
}
