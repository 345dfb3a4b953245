import { createHash } from 'node:crypto';
import {
  Body,
  Controller,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  AGENT_ID_PATTERN,
  casinoErrors,
  DomainError,
  ErrorCode,
  ESCROW_LIMITS,
  ESCROW_STATUSES,
  escrowCommands,
  escrowErrors,
  type EscrowListReply,
  type EscrowStatsReply,
  type EscrowView,
} from '@pf/contracts';
import { COMMAND_CLIENT, CONFIG } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import { maxAmountMicros, type GatewayConfig } from '../config.js';
import { AgentAuthGuard, bearerToken, type AuthenticatedRequest } from './auth.guard.js';
import {
  milestoneReply,
  milestonesField,
  parseMilestoneIndex,
  parseMilestones,
} from './escrow-milestones.js';
import { keyIdOf, mandateRefusal, requireAction } from './mandate.js';
import { parseAmount, parseInput, usd } from './request.js';

const MS_PER_HOUR = 3_600_000;
const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** Fields are checked one by one below, each with the API's own error code. */
export const createEscrowBodySchema = z.object({
  amount_usd: z.unknown().optional(),
  description: z.unknown().optional(),
  counterparty_agent_id: z.unknown().optional(),
  timeout_hours: z.unknown().optional(),
  referral_code: z.unknown().optional(),
  milestones: z.unknown().optional(),
});

export const pendingQuerySchema = z.object({
  role: z.enum(['counterparty', 'creator']).default('counterparty'),
  status: z.enum([...ESCROW_STATUSES, 'all']).default('funded'),
  limit: z.coerce.number().int().min(1).max(ESCROW_LIMITS.maxListLimit).default(100),
});

const completeBodySchema = z.object({
  result_summary: z.unknown().optional(),
  milestone: z.unknown().optional(),
});
const releaseBodySchema = z.object({ milestone: z.unknown().optional() });
const disputeBodySchema = z.object({
  reason: z.string().max(ESCROW_LIMITS.maxDisputeReasonChars).nullable().optional(),
});

/**
 * Escrow routes (API.md, "Escrow"). `GET /escrow/pending` and `/escrow/stats` are static routes,
 * which the router always prefers over `GET /escrow/:id`.
 */
@Controller('escrow')
export class EscrowController {
  constructor(
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
    @Inject(CONFIG) private readonly config: GatewayConfig,
    private readonly auth: AgentAuthGuard,
  ) {}

  @Post('create')
  @HttpCode(201)
  @UseGuards(AgentAuthGuard)
  async create(@Req() request: AuthenticatedRequest, @Body() body: unknown) {
    const input = parseInput(createEscrowBodySchema, body);
    const amountMicros = parseAmount(input.amount_usd, {
      field: 'amount_usd',
      maxMicros: maxAmountMicros(this.config),
      minMicros: ESCROW_LIMITS.minAmountMicros,
    });
    if (typeof input.description !== 'string')
      throw new DomainError(escrowErrors.invalidDescription, 'description must be a string');
    // Checked here, not only by escrow's decider: an id too long for the command's schema would
    // come back as invalid_request naming the command's field (counterpartyId), not the API's.
    if (
      typeof input.counterparty_agent_id !== 'string' ||
      !AGENT_ID_PATTERN.test(input.counterparty_agent_id)
    ) {
      throw new DomainError(
        escrowErrors.invalidCounterparty,
        'counterparty_agent_id must be an agent id (ag_ + 12 hex)',
      );
    }
    const timeoutMs = parseTimeout(input.timeout_hours);
    const milestones = parseMilestones(input.milestones, maxAmountMicros(this.config));
    const key = idempotencyKey(request);
    const escrow = await this.commands
      .request<EscrowView>(escrowCommands.create, {
        escrowId: key ? `esc_${derivedId(`create\n${request.agentId}\n${key}`).slice(0, 16)}` : undefined,
        creatorId: request.agentId,
        counterpartyId: input.counterparty_agent_id,
        amountMicros: amountMicros.toString(),
        description: input.description,
        timeoutMs,
        ...(milestones ? { milestones } : {}),
        // With a sub-key, its id travels to casino's hold decision (the mandate is checked there).
        ...keyIdOf(request),
      })
      .catch(apiError);
    return {
      ...fullView(escrow),
      timeout_hours: escrow.timeoutMs / MS_PER_HOUR,
      message: `Escrow funded: $${usd(escrow.amountMicros)} is locked until the creator releases it or the deadline passes.`,
      next_steps: {
        counterparty: `POST /escrow/complete/${escrow.escrowId} when the work is done (optional {"result_summary": "..."})`,
        creator: `POST /escrow/release/${escrow.escrowId} to pay ${usd(escrow.netToCounterpartyMicros)} to the counterparty`,
        status: `GET /escrow/${escrow.escrowId}`,
        deadline: `At ${escrow.autoReleaseAt}: refunded if not completed, released if completed, held if disputed.`,
      },
    };
  }

  @Get('pending')
  @UseGuards(AgentAuthGuard)
  async pending(@Req() request: AuthenticatedRequest, @Query() query: unknown) {
    const input = parseInput(pendingQuerySchema, query, 'query');
    const reply = await this.commands.request<EscrowListReply>(escrowCommands.list, {
      agentId: request.agentId,
      ...input,
    });
    return {
      escrows: reply.escrows.map((escrow) => ({
        escrow_id: escrow.escrowId,
        description: escrow.description,
        amount_usd: usd(escrow.amountMicros),
        net_to_counterparty: usd(escrow.netToCounterpartyMicros),
        commission_usd: usd(escrow.commissionMicros),
        creator_id: escrow.creatorId,
        counterparty_id: escrow.counterpartyId,
        status: escrow.status,
        created_at: escrow.createdAt,
        auto_release_at: escrow.autoReleaseAt,
      })),
    };
  }

  @Get('stats')
  async stats() {
    const stats = await this.commands.request<EscrowStatsReply>(escrowCommands.stats, {});
    return {
      total_created: stats.totalCreated,
      total_released: stats.totalReleased,
      total_refunded: stats.totalRefunded,
      total_disputed: stats.totalDisputed,
      total_split: stats.totalSplit,
      total_volume_usd: usd(stats.totalVolumeMicros),
      total_commission_usd: usd(stats.totalCommissionMicros),
      commission_rate: stats.commissionBps / 10_000,
    };
  }

  @Post('complete/:id')
  @HttpCode(200)
  @UseGuards(AgentAuthGuard)
  async complete(@Req() request: AuthenticatedRequest, @Param('id') escrowId: string, @Body() body: unknown) {
    requireAction(request, 'escrow_complete');
    const input = parseInput(completeBodySchema, body);
    const summary = input.result_summary;
    if (summary !== undefined && summary !== null && typeof summary !== 'string') {
      throw new DomainError(escrowErrors.invalidResultSummary, 'result_summary must be a string');
    }
    const milestone = parseMilestoneIndex(input.milestone);
    const escrow = await this.act(escrowCommands.complete, request, escrowId, {
      resultSummary: summary ?? null,
      ...(milestone === undefined ? {} : { milestone }),
    });
    if (milestone !== undefined) return milestoneReply(escrow, milestone, 'complete');
    return {
      escrow_id: escrow.escrowId,
      status: escrow.status,
      result_summary: escrow.resultSummary,
      message: 'Marked complete. The creator can now release the payment.',
      next_step: `The creator releases with POST /escrow/release/${escrow.escrowId}; otherwise it is released automatically at auto_release_at.`,
      auto_release_at: escrow.autoReleaseAt,
    };
  }

  @Post('release/:id')
  @HttpCode(200)
  @UseGuards(AgentAuthGuard)
  async release(@Req() request: AuthenticatedRequest, @Param('id') escrowId: string, @Body() body: unknown) {
    requireAction(request, 'escrow_release');
    // Release had no body before milestones: anything but a JSON object still means "the whole escrow".
    const milestone = parseMilestoneIndex(
      typeof body === 'object' && body !== null && !Array.isArray(body)
        ? parseInput(releaseBodySchema, body).milestone
        : undefined,
    );
    const escrow = await this.act(
      escrowCommands.release,
      request,
      escrowId,
      milestone === undefined ? {} : { milestone },
    );
    if (milestone !== undefined) return milestoneReply(escrow, milestone, 'release');
    const payout = escrow.payout!;
    return {
      escrow_id: escrow.escrowId,
      status: escrow.status,
      amount_released: usd(payout.counterpartyMicros),
      released_to_counterparty: usd(payout.counterpartyMicros),
      commission: usd(payout.commissionMicros),
      // API.md: the public starter kit reads these two names for the same amount.
      commission_paid: usd(payout.commissionMicros),
      commission_usd: usd(payout.commissionMicros),
      referral_commission: usd(payout.referrerMicros),
      counterparty_id: escrow.counterpartyId,
      released_at: escrow.releasedAt,
      message: `Released $${usd(payout.counterpartyMicros)} to ${escrow.counterpartyId} (commission $${usd(payout.commissionMicros)}).`,
    };
  }

  @Post('decline/:id')
  @HttpCode(200)
  @UseGuards(AgentAuthGuard)
  async decline(@Req() request: AuthenticatedRequest, @Param('id') escrowId: string) {
    requireAction(request, 'escrow_decline');
    const escrow = await this.act(escrowCommands.decline, request, escrowId);
    return {
      escrow_id: escrow.escrowId,
      status: escrow.status,
      amount_refunded: usd(escrow.amountMicros),
      refunded_to: escrow.creatorId,
      refunded_at: escrow.refundedAt,
      message: `Declined: $${usd(escrow.amountMicros)} returned to the creator.`,
    };
  }

  @Post('dispute/:id')
  @HttpCode(200)
  @UseGuards(AgentAuthGuard)
  async dispute(@Req() request: AuthenticatedRequest, @Param('id') escrowId: string, @Body() body: unknown) {
    requireAction(request, 'escrow_dispute');
    const input = parseInput(disputeBodySchema, body);
    const escrow = await this.act(escrowCommands.dispute, request, escrowId, {
      reason: input.reason ?? null,
    });
    return {
      escrow_id: escrow.escrowId,
      status: escrow.status,
      reason: escrow.disputeReason,
      disputed_at: escrow.disputedAt,
      message: 'Disputed: the funds stay locked until an operator resolves it.',
    };
  }

  /** Public view without a key (or for outsiders); a party also sees the details and history. */
  @Get(':id')
  async get(
    @Req() request: FastifyRequest,
    @Param('id') escrowId: string,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    // `GET /escrow/create` is a client using the wrong method, not a lookup of an escrow named "create".
    const write = WRITE_ROUTES[escrowId];
    if (write) {
      void reply.header('allow', 'POST');
      throw new DomainError(ErrorCode.methodNotAllowed, `use POST ${write}`);
    }
    const token = bearerToken(request);
    const viewerId =
      request.headers.authorization === undefined ? undefined : await this.auth.authenticate(token);
    const escrow = await this.commands.request<EscrowView>(escrowCommands.get, { escrowId, viewerId });
    return escrow.events ? { ...fullView(escrow), events: escrow.events } : publicView(escrow);
  }

  private act(
    subject: string,
    request: AuthenticatedRequest,
    escrowId: string,
    extra: Record<string, unknown> = {},
  ): Promise<EscrowView> {
    const key = idempotencyKey(request);
    const commandId = key
      ? `idem:${derivedId(`${subject}\n${request.agentId}\n${escrowId}\n${key}`).slice(0, 32)}`
      : undefined;
    return this.commands
      .request<EscrowView>(subject, { escrowId, actorId: request.agentId, commandId, ...extra })
      .catch(apiError);
  }
}

/** The escrow writes whose first path segment a GET would take for an escrow id. */
const WRITE_ROUTES: Readonly<Record<string, string>> = {
  create: '/escrow/create',
  complete: '/escrow/complete/{escrow_id}',
  release: '/escrow/release/{escrow_id}',
  decline: '/escrow/decline/{escrow_id}',
  dispute: '/escrow/dispute/{escrow_id}',
};

/** timeout_hours: a positive number of hours (fractions allowed); the service checks the bounds. */
function parseTimeout(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const hours = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof hours !== 'number' || !Number.isFinite(hours) || hours <= 0) {
    throw new DomainError(escrowErrors.invalidTimeout, 'timeout_hours must be a positive number of hours');
  }
  const timeoutMs = Math.round(hours * MS_PER_HOUR);
  if (timeoutMs < 1 || timeoutMs > ESCROW_LIMITS.maxTimeoutMs) {
    throw new DomainError(
      escrowErrors.invalidTimeout,
      `timeout_hours must be at most ${ESCROW_LIMITS.maxTimeoutMs / MS_PER_HOUR}`,
    );
  }
  return timeoutMs;
}

function idempotencyKey(request: FastifyRequest): string | undefined {
  const header = request.headers['idempotency-key'];
  const key = Array.isArray(header) ? header[0] : header;
  return key && key.length <= MAX_IDEMPOTENCY_KEY_LENGTH ? key : undefined;
}

/** Ids derived from the caller's Idempotency-Key: a retry after a 503 finds the first attempt's work. */
function derivedId(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

/** Service refusals in the API's terms: the balance in USD, a reused key as the API's 422. */
function apiError(error: unknown): never {
  if (error instanceof DomainError && error.code === casinoErrors.insufficientBalance) {
    const available = error.details?.available_micros;
    throw new DomainError(
      error.code,
      'insufficient balance for this escrow',
      typeof available === 'string' ? { balance_usd: usd(available) } : undefined,
    );
  }
  if (error instanceof DomainError && error.code === escrowErrors.escrowIdReused) {
    throw new DomainError(
      ErrorCode.idempotencyKeyReused,
      'this Idempotency-Key was used for a different escrow',
    );
  }
  throw mandateRefusal(error);
}

function publicView(escrow: EscrowView) {
  return {
    escrow_id: escrow.escrowId,
    status: escrow.status,
    amount_usd: usd(escrow.amountMicros),
    created_at: escrow.createdAt,
    auto_release_at: escrow.autoReleaseAt,
    completed_at: escrow.completedAt,
    released_at: escrow.releasedAt,
    refunded_at: escrow.refundedAt,
    disputed_at: escrow.disputedAt,
  };
}

function fullView(escrow: EscrowView) {
  return {
    ...publicView(escrow),
    description: escrow.description,
    result_summary: escrow.resultSummary,
    dispute_reason: escrow.disputeReason,
    creator_id: escrow.creatorId,
    counterparty_id: escrow.counterpartyId,
    commission_usd: usd(escrow.commissionMicros),
    net_to_counterparty: usd(escrow.netToCounterpartyMicros),
    resolved_at: escrow.resolvedAt,
    payout: escrow.payout
      ? {
          released_to_counterparty: usd(escrow.payout.counterpartyMicros),
          commission: usd(escrow.payout.commissionMicros),
          referral_commission: usd(escrow.payout.referrerMicros),
          refunded_to_creator: usd(escrow.payout.creatorMicros),
        }
      : null,
    ...milestonesField(escrow),
  };
}
