import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import type { QueryRunner } from 'typeorm';
import {
  claimCommandSchema,
  eventSubject,
  faucetCommands,
  faucetStatsCommandSchema,
  parseOrThrow as parse,
  type ClaimReply,
  type EventEnvelope,
  type FaucetStatsView,
} from '@pf/contracts';
import type { NatsEventContext } from '@pf/messaging';
import { ClaimsService } from '../application/claims.service.js';
import { DepositsService } from '../application/deposits.service.js';
import { StatsService } from '../application/stats.service.js';

/** The faucet's command handlers and the casino events it follows: validate, call one service. */
@Controller()
export class FaucetHandlers {
  constructor(
    private readonly claims: ClaimsService,
    private readonly statistics: StatsService,
    private readonly deposits: DepositsService,
  ) {}

  @MessagePattern(faucetCommands.claim)
  claim(@Payload() payload: unknown): Promise<ClaimReply> {
    const { agentId, clientIp } = parse(claimCommandSchema, payload);
    return this.claims.claim({ agentId, clientIp: clientIp ?? null });
  }

  @MessagePattern(faucetCommands.stats)
  stats(@Payload() payload: unknown): Promise<FaucetStatsView> {
    parse(faucetStatsCommandSchema, payload);
    return this.statistics.stats();
  }

  @EventPattern<string>(eventSubject('casino', 'funds_transferred'))
  onFundsTransferred(@Payload() envelope: EventEnvelope, @Ctx() context: NatsEventContext): Promise<void> {
    return this.deposits.onFundsTransferred(envelope, context.getTransaction<QueryRunner>());
  }
}
