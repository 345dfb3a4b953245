import { createHash } from 'node:crypto';
import { Body, Controller, HttpCode, Inject, Param, Post, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  DomainError,
  escrowCommands,
  escrowErrors,
  RESOLUTION_OUTCOMES,
  type EscrowView,
} from '@pf/contracts';
import { COMMAND_CLIENT } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import { AdminGuard } from './admin.guard.js';
import { parseInput, usd } from './request.js';

export const resolveBodySchema = z.object({
  outcome: z.unknown().optional(),
  counterparty_share_bps: z.unknown().optional(),
});

/**
 * `POST /admin/escrow/{id}/resolve` (API.md, "Operators"): settles a disputed escrow. `split`
 * releases `counterparty_share_bps` of the amount to the counterparty (commission is taken on
 * that part only) and returns the rest to the creator.
 */
@Controller('admin/escrow')
@UseGuards(AdminGuard)
export class AdminEscrowController {
  constructor(@Inject(COMMAND_CLIENT) private readonly commands: CommandClient) {}

  @Post(':id/resolve')
  @HttpCode(200)
  async resolve(@Req() request: FastifyRequest, @Param('id') escrowId: string, @Body() body: unknown) {
    const input = parseInput(resolveBodySchema, body);
    const outcome = RESOLUTION_OUTCOMES.find((known) => known === input.outcome);
    if (!outcome)
      throw new DomainError(
        escrowErrors.invalidResolution,
        `outcome must be one of ${RESOLUTION_OUTCOMES.join(', ')}`,
      );
    const share = input.counterparty_share_bps;
    if (
      share !== undefined &&
      share !== null &&
      !(typeof share === 'number' && Number.isInteger(share) && share >= 0 && share <= 10_000)
    ) {
      throw new DomainError(
        escrowErrors.invalidResolution,
        'counterparty_share_bps must be an integer from 0 to 10000',
      );
    }
    const header = request.headers['idempotency-key'];
    const key = typeof header === 'string' && header.length <= 255 ? header : undefined;
    const escrow = await this.commands.request<EscrowView>(escrowCommands.resolve, {
      escrowId,
      outcome,
      counterpartyShareBps: typeof share === 'number' ? share : undefined,
      commandId: key
        ? `idem:${createHash('sha256').update(`resolve\n${escrowId}\n${key}`).digest('hex').slice(0, 32)}`
        : undefined,
    });
    const payout = escrow.payout;
    return {
      escrow_id: escrow.escrowId,
      status: escrow.status,
      outcome,
      released_to_counterparty: usd(payout?.counterpartyMicros ?? '0'),
      commission: usd(payout?.commissionMicros ?? '0'),
      referral_commission: usd(payout?.referrerMicros ?? '0'),
      refunded_to_creator: payout ? usd(payout.creatorMicros) : usd(escrow.amountMicros),
      resolved_at: escrow.resolvedAt,
      message: `Dispute resolved: ${outcome}.`,
    };
  }
}
