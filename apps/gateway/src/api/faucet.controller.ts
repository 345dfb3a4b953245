import { isIP } from 'node:net';
import { Body, Controller, Get, HttpCode, Inject, Post, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AGENT_ID_PATTERN, faucetCommands, type ClaimReply, type FaucetStatsView } from '@pf/contracts';
import { COMMAND_CLIENT, CONFIG } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import type { GatewayConfig } from '../config.js';
import { parseInput, usd } from './request.js';

export const claimBodySchema = z.object({
  agent_casino_id: z
    .string()
    .max(64)
    .regex(AGENT_ID_PATTERN, 'must be an agent id (ag_ followed by 12 hex digits)'),
  /** Accepted for compatibility with the public faucet; unused. */
  referral_code: z.string().max(64).optional(),
});

/** The faucet (API.md, "Faucet"): no auth; the faucet service enforces every rule. */
@Controller('faucet')
export class FaucetController {
  constructor(
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
    @Inject(CONFIG) private readonly config: GatewayConfig,
  ) {}

  @Post('claim')
  @HttpCode(200)
  async claim(@Body() body: unknown, @Req() request: FastifyRequest) {
    const input = parseInput(claimBodySchema, body);
    const reply = await this.commands.request<ClaimReply>(
      faucetCommands.claim,
      {
        agentId: input.agent_casino_id,
        clientIp: this.limitedAddress(request),
        referralCode: input.referral_code,
      },
      this.config.COMMAND_TIMEOUT_MS,
    );
    const credited = usd(reply.amountMicros);
    return {
      credited,
      claim_id: reply.claimId,
      agent_id: reply.agentId,
      claimed_at: reply.claimedAt,
      message: `$${credited} credited to ${reply.agentId}. Check it: GET /api/v1/auth/balance with Authorization: Bearer <api_key>`,
    };
  }

  /** The address the faucet's per-address allowance counts, or null for an exempt loopback peer. */
  private limitedAddress(request: Pick<FastifyRequest, 'ip'>): string | null {
    const address = clientAddress(request);
    if (address && isLoopback(address) && !this.config.FAUCET_LIMIT_LOOPBACK) return null;
    return address;
  }

  @Get('stats')
  async stats() {
    const stats = await this.commands.request<FaucetStatsView>(
      faucetCommands.stats,
      {},
      this.config.COMMAND_TIMEOUT_MS,
    );
    return {
      total_claims: stats.totalClaims,
      total_agents: stats.totalAgents,
      total_value_usd: usd(stats.totalValueMicros),
      remaining_budget_usd: usd(stats.remainingBudgetMicros),
    };
  }
}

/**
 * The client's address as Fastify resolved it: the socket's peer, or, only when TRUST_PROXY is
 * on, the address from X-Forwarded-For (so a spoofed header changes nothing by default). One
 * definition for the whole gateway: the rate limits use the same `request.ip`.
 * IPv4-mapped IPv6 (`::ffff:1.2.3.4`) becomes plain IPv4 so one client is one key.
 */
export function clientAddress(request: Pick<FastifyRequest, 'ip'>): string | null {
  const address = request.ip;
  if (!isIP(address)) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address.toLowerCase();
}

/** 127.0.0.0/8 and ::1: a client on this machine (addresses as `clientAddress` normalizes them). */
export function isLoopback(address: string): boolean {
  return address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address);
}
