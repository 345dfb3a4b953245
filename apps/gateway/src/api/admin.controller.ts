import { Body, Controller, Get, HttpCode, Inject, Post, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { casinoCommands, type CreditReply, type LedgerCheckReport } from '@pf/contracts';
import { COMMAND_CLIENT, CONFIG } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import { maxAmountMicros, type GatewayConfig } from '../config.js';
import { AdminGuard } from './admin.guard.js';
import { parseAmount, parseInput, usd } from './request.js';

export const creditBodySchema = z.object({
  agent_id: z.string().max(64),
  amount_usd: z.union([z.number(), z.string()]),
  reference: z.string().min(1).max(128),
});

/** Operator routes (API.md, "Operators"). */
@Controller('admin')
@UseGuards(AdminGuard)
export class AdminController {
  constructor(
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
    @Inject(CONFIG) private readonly config: GatewayConfig,
  ) {}

  /** A deposit from outside (`world`), idempotent on `reference`. */
  @Post('credit')
  @HttpCode(200)
  async credit(@Body() body: unknown) {
    const input = parseInput(creditBodySchema, body);
    const amountMicros = parseAmount(input.amount_usd, {
      field: 'amount_usd',
      maxMicros: maxAmountMicros(this.config),
    });
    const reply = await this.commands.request<CreditReply>(casinoCommands.credit, {
      agentId: input.agent_id,
      amountMicros: amountMicros.toString(),
      reference: input.reference,
    });
    return {
      transfer_id: reply.transferId,
      agent_id: reply.agentId,
      amount_usd: usd(reply.amountMicros),
      reference: reply.reference,
      balance_usd: usd(reply.availableMicros),
    };
  }

  /** Recomputes every balance from the log and checks the invariants. */
  @Get('ledger/check')
  async checkLedger() {
    const report = await this.commands.request<LedgerCheckReport>(casinoCommands.checkLedger, {}, 60_000);
    return {
      ok: report.ok,
      events_checked: report.eventsChecked,
      accounts_checked: report.accountsChecked,
      total_usd: usd(report.totalMicros),
      // Exact, for the operator view's "books sum to zero" (additive fields).
      total_micros: report.totalMicros,
      checked_at: new Date().toISOString(),
      violations: report.violations,
    };
  }
}
