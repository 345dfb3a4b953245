import { Body, Controller, Get, HttpCode, Inject, Post, Query, Req, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import {
  casinoCommands,
  ledgerCursorSchema,
  newApiKey,
  type AccountView,
  type ActivityView,
  type LedgerPage,
  type ReferralStatsView,
  type RegisterReply,
} from '@pf/contracts';
import { COMMAND_CLIENT } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import { AgentAuthGuard, type AuthenticatedRequest } from './auth.guard.js';
import { parseInput, usd } from './request.js';

export const registerBodySchema = z.object({
  referral_code: z.string().max(64).optional(),
  agent_name: z.string().trim().min(1).max(64).optional(),
});

export const ledgerQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: ledgerCursorSchema.optional(),
});

/** Casino accounts: registration, balance, ledger history and referrals (API.md). */
@Controller('api/v1/auth')
export class CasinoController {
  constructor(@Inject(COMMAND_CLIENT) private readonly commands: CommandClient) {}

  @Post('register')
  @HttpCode(201)
  async register(@Body() body: unknown) {
    const input = parseInput(registerBodySchema, body);
    // The key is drawn here and shown once; casino is told only its hash (ADR 0010).
    const { apiKey, apiKeySha256 } = newApiKey();
    const agent = await this.commands.request<RegisterReply>(casinoCommands.register, {
      apiKeySha256,
      agentName: input.agent_name,
      referralCode: input.referral_code,
    });
    return {
      agent_id: agent.agentId,
      api_key: apiKey,
      referral_code: agent.referralCode,
      balance: 0,
      agent: { id: agent.agentId, api_key: apiKey, referral_code: agent.referralCode },
      referred_by: agent.referredBy,
      created_at: agent.createdAt,
      message: 'Agent registered. Store the api_key now: it is shown only once.',
      next_steps: [
        'Claim $1 free: POST /faucet/claim {"agent_casino_id": "<agent_id>"}',
        'Check your balance: GET /api/v1/auth/balance with Authorization: Bearer <api_key>',
        'Post a job: POST /escrow/create {"amount_usd", "description", "counterparty_agent_id"}',
      ],
    };
  }

  @Get('balance')
  @UseGuards(AgentAuthGuard)
  async balance(@Req() request: AuthenticatedRequest) {
    const account = await this.commands.request<AccountView>(casinoCommands.getAccount, {
      agentId: request.agentId,
    });
    const availableUsd = usd(account.availableMicros);
    return {
      agent_id: account.agentId,
      balance_usd: availableUsd,
      held_usd: usd(account.heldMicros),
      total_usd: usd(BigInt(account.availableMicros) + BigInt(account.heldMicros)),
      available_usd: availableUsd,
      lifetime: {
        total_deposited: usd(account.lifetime.depositedMicros),
        total_withdrawn: usd(account.lifetime.withdrawnMicros),
        total_escrowed: usd(account.lifetime.escrowedMicros),
        total_earned: usd(account.lifetime.earnedMicros),
        total_fees: usd(account.lifetime.feesMicros),
      },
      recent_activity: account.recentActivity.map(activity),
    };
  }

  @Get('ledger')
  @UseGuards(AgentAuthGuard)
  async ledger(@Req() request: AuthenticatedRequest, @Query() query: unknown) {
    const input = parseInput(ledgerQuerySchema, query, 'query');
    const page = await this.commands.request<LedgerPage>(casinoCommands.getLedger, {
      agentId: request.agentId,
      limit: input.limit,
      cursor: input.cursor,
    });
    return { agent_id: request.agentId, entries: page.entries.map(activity), next_cursor: page.nextCursor };
  }

  @Get('referral/stats')
  @UseGuards(AgentAuthGuard)
  async referralStats(@Req() request: AuthenticatedRequest) {
    const stats = await this.commands.request<ReferralStatsView>(casinoCommands.referralStats, {
      agentId: request.agentId,
    });
    return {
      agent_id: stats.agentId,
      referral_code: stats.referralCode,
      referred_agents: stats.referredAgents,
      total_referrals: stats.referredAgents,
      commission_earned_usd: usd(stats.commissionEarnedMicros),
    };
  }
}

function activity(entry: ActivityView) {
  return {
    type: entry.type,
    amount: usd(entry.amountMicros),
    balance_after: usd(entry.balanceAfterMicros),
    reason: entry.reason,
    service: entry.service,
    operation_id: entry.operationId,
    counterparty: entry.counterparty,
    at: entry.at,
  };
}
