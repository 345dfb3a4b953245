import { createHash, randomBytes } from 'node:crypto';
import { Body, Controller, HttpCode, Inject, Post, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  AGENT_ID_PATTERN,
  casinoErrors,
  DomainError,
  MANDATE_LIMITS,
  mandateCommands,
  paymentErrors,
  type PaymentReply,
} from '@pf/contracts';
import { COMMAND_CLIENT, CONFIG } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import { maxAmountMicros, type GatewayConfig } from '../config.js';
import { AgentAuthGuard, type AuthenticatedRequest } from './auth.guard.js';
import { keyIdOf, mandateRefusal } from './mandate.js';
import { parseAmount, parseInput, usd } from './request.js';

const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** Fields are checked one by one below, each with its own code. */
export const payBodySchema = z.object({
  to_agent_id: z.unknown().optional(),
  amount_usd: z.unknown().optional(),
  memo: z.unknown().optional(),
});

/**
 * Direct payments (ADR 0019): one ledger transfer from the caller to another agent, no
 * commission. `/api/v1/stats/pay` is the public service's path for the same thing.
 */
@Controller('api/v1')
export class PayController {
  constructor(
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
    @Inject(CONFIG) private readonly config: GatewayConfig,
  ) {}

  @Post('pay')
  @HttpCode(201)
  @UseGuards(AgentAuthGuard)
  pay(@Req() request: AuthenticatedRequest, @Body() body: unknown) {
    return this.execute(request, body);
  }

  @Post('stats/pay')
  @HttpCode(201)
  @UseGuards(AgentAuthGuard)
  payAlias(@Req() request: AuthenticatedRequest, @Body() body: unknown) {
    return this.execute(request, body);
  }

  private async execute(request: AuthenticatedRequest, body: unknown) {
    const input = parseInput(payBodySchema, body);
    const to = input.to_agent_id;
    if (typeof to !== 'string' || !AGENT_ID_PATTERN.test(to))
      throw new DomainError(paymentErrors.invalidPayee, 'to_agent_id must be an agent id (ag_ + 12 hex)');
    if (to === request.agentId)
      throw new DomainError(paymentErrors.selfPayment, 'an agent cannot pay itself');
    const amountMicros = parseAmount(input.amount_usd, {
      field: 'amount_usd',
      maxMicros: maxAmountMicros(this.config),
    });
    const memo = memoOf(input.memo);
    const key = idempotencyKey(request);
    const payment = await this.commands
      .request<PaymentReply>(mandateCommands.pay, {
        // Derived from the Idempotency-Key: a retry after a 503 finds the first attempt's transfer.
        paymentId: `pay_${key ? derivedHex(`pay\n${request.agentId}\n${key}`) : randomBytes(8).toString('hex')}`,
        from: request.agentId,
        to,
        amountMicros: amountMicros.toString(),
        memo,
        ...keyIdOf(request),
      })
      .catch((error: unknown) => {
        throw apiError(error);
      });
    return {
      payment_id: payment.paymentId,
      status: 'completed',
      from_agent_id: payment.from,
      to_agent_id: payment.to,
      amount_usd: usd(payment.amountMicros),
      fee_usd: 0,
      memo: payment.memo,
      key_id: payment.keyId,
      paid_at: payment.paidAt,
      balance_usd: usd(payment.availableMicros),
      message: `Paid $${usd(payment.amountMicros)} to ${payment.to}.`,
    };
  }
}

function memoOf(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length > MANDATE_LIMITS.maxMemoChars)
    throw new DomainError(
      paymentErrors.invalidMemo,
      `memo must be text of at most ${MANDATE_LIMITS.maxMemoChars} characters`,
    );
  return value;
}

function apiError(error: unknown): unknown {
  if (error instanceof DomainError && error.code === casinoErrors.insufficientBalance) {
    const available = error.details?.available_micros;
    return new DomainError(
      error.code,
      'insufficient balance for this payment',
      typeof available === 'string' ? { balance_usd: usd(available) } : undefined,
    );
  }
  return mandateRefusal(error);
}

function idempotencyKey(request: FastifyRequest): string | undefined {
  const header = request.headers['idempotency-key'];
  const key = Array.isArray(header) ? header[0] : header;
  return key && key.length <= MAX_IDEMPOTENCY_KEY_LENGTH ? key : undefined;
}

function derivedHex(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 16);
}
