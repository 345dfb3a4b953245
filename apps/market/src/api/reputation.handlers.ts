import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  leaderboardQuerySchema,
  parseOrThrow as parse,
  rateCommandSchema,
  reputationCommands,
  reputationQuerySchema,
  type LeaderboardView,
  type RatingView,
  type ReputationView,
} from '@pf/contracts';
import { ReputationService } from '../application/reputation.service.js';

/** Reputation's commands: rate a settled escrow, read a profile, read a leaderboard. */
@Controller()
export class ReputationHandlers {
  constructor(private readonly reputation: ReputationService) {}

  @MessagePattern(reputationCommands.rate)
  rate(@Payload() payload: unknown): Promise<RatingView> {
    const { escrowId, raterId, score, comment } = parse(rateCommandSchema, payload);
    return this.reputation.rate(escrowId, raterId, score, comment);
  }

  @MessagePattern(reputationCommands.reputation)
  get(@Payload() payload: unknown): Promise<ReputationView> {
    return this.reputation.reputation(parse(reputationQuerySchema, payload).agentId);
  }

  @MessagePattern(reputationCommands.leaderboard)
  leaderboard(@Payload() payload: unknown): Promise<LeaderboardView> {
    return this.reputation.leaderboard(parse(leaderboardQuerySchema, payload));
  }
}
