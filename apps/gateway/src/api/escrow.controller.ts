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
  parseDeliverable,
  STATS_HISTORY_BUCKETS,
  STATS_HISTORY_DEFAULT_BUCKETS,
  STATS_HISTORY_MAX_BUCKETS,
  type EscrowListReply,
  type EscrowStatsReply,
  type StatsHistoryReply,
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
  evaluator_agent_id: z.unknown().optional(),
  evaluator_fee_bps: z.unknown().optional(),
  milestones: z.unknown().optional(),
});

export const pendingQuerySchema = z.object({
  role: z.enum(['counterparty', 'creator', 'evaluator']).default('counterparty'),
  status: z.enum([...ESCROW_STATUSES, 'all']).default('funded'),
  limit: z.coerce.number().int().min(1).max(ESCROW_LIMITS.maxListLimit).default(100),
});

/** `GET /escrow/stats/history`: the bucket bounds its own limit (a week of hours, 90 days). */
export const statsHistoryQuerySchema = z
  .object({
    bucket: z.enum(STATS_HISTORY_BUCKETS).default('hour'),
    limit: z.coerce.number().int().min(1).optional(),
  })
  .refine((query) => query.limit === undefined || query.limit <= STATS_HISTORY_MAX_BUCKETS[query.bucket], {
    message: `at most ${STATS_HISTORY_MAX_BUCKETS.hour} hours or ${STATS_HISTORY_MAX_BUCKETS.day} days`,
    path: ['limit'],
  });

const completeBodySchema = z.object({
  result_summary: z.unknown().optional(),
  deliverable: z.unknown().optional(),
  milestone: z.unknown().optional(),
});
export const rejectBodySchema = z.object({ reason: z.unknown().optional(), refund: z.unknown().optional() });
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
    const evaluator = parseEvaluator(input.evaluator_agent_id, input.evaluator_fee_bps);
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
        ...evaluator,
        ...(milestones ? { milestones } : {}),
        // With a sub-key, its id travels to casino's hold decision (the mandate is checked there).
        ...keyIdOf(request),
      })
      .catch(apiError);
    const releaser = escrow.evaluatorId ? 'the evaluator' : 'the creator';
    return {
      ...fullView(escrow),
      timeout_hours: escrow.timeoutMs / MS_PER_HOUR,
      message: `Escrow funded: $${usd(escrow.amountMicros)} is locked until ${releaser} releases it or the deadline passes.`,
      next_steps: {
        counterparty: `POST /escrow/complete/${escrow.escrowId} when the work is done (optional {"result_summary": "...", "deliverable": {"url", "sha256", "mime"}})`,
        ...(escrow.evaluatorId
          ? {
              evaluator: `POST /escrow/release/${escrow.escrowId} to pay the counterparty, or POST /escrow/reject/${escrow.escrowId} {"reason": "..."} to send the work back`,
              creator: `POST /escrow/dispute/${escrow.escrowId} if something is wrong; POST /escrow/cancel/${escrow.escrowId} cancels only with the counterparty's consent`,
            }
          : {
              creator: `POST /escrow/release/${escrow.escrowId} to pay ${usd(escrow.netToCounterpartyMicros)} to the counterparty`,
            }),
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
      // Exact figures for displays that must not round (the dashboard); additive fields.
      total_volume_micros: stats.totalVolumeMicros,
      total_commission_micros: stats.totalCommissionMicros,
      by_status: stats.byStatus,
      commission_rate: stats.commissionBps / 10_000,
    };
  }

  /** Released volume and commission per hour or day: the dashboard's chart starts from this. */
  @Get('stats/history')
  async statsHistory(@Query() query: unknown) {
    const parsed = statsHistoryQuerySchema.safeParse(query ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new DomainError(escrowErrors.invalidHistoryQuery, `${issue.path.join('.')}: ${issue.message}`);
    }
    const { bucket } = parsed.data;
    const reply = await this.commands.request<StatsHistoryReply>(escrowCommands.statsHistory, {
      bucket,
      limit: parsed.data.limit ?? STATS_HISTORY_DEFAULT_BUCKETS[bucket],
    });
    return {
      bucket: reply.bucket,
      buckets: reply.buckets.map((item) => ({
        start: item.start,
        released_count: item.releasedCount,
        volume_usd: usd(item.volumeMicros),
        volume_micros: item.volumeMicros,
        commission_usd: usd(item.commissionMicros),
        commission_micros: item.commissionMicros,
      })),
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
    // Checked here, before anything is sent: a bad deliverable is a 400 and nothing is written.
    const deliverable = parseDeliverable(input.deliverable);
    const milestone = parseMilestoneIndex(input.milestone);
    const escrow = await this.act(escrowCommands.complete, request, escrowId, {
      resultSummary: summary ?? null,
      ...(deliverable ? { deliverable } : {}),
      ...(milestone === undefined ? {} : { milestone }),
    });
    if (milestone !== undefined) return milestoneReply(escrow, milestone, 'complete');
    const releaser = escrow.evaluatorId ? 'The evaluator' : 'The creator';
    return {
      escrow_id: escrow.escrowId,
      status: escrow.status,
      result_summary: escrow.resultSummary,
      ...(escrow.deliverable ? { deliverable: escrow.deliverable } : {}),
      message: escrow.evaluatorId
        ? 'Marked complete. The evaluator can now release the payment or send the work back.'
        : 'Marked complete. The creator can now release the payment.',
      next_step: `${releaser} releases with POST /escrow/release/${escrow.escrowId}; otherwise it is released automatically at auto_release_at.`,
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
      // Only on an escrow with an evaluator: its fee, one more part of the same post.
      ...(payout.evaluatorId !== undefined
        ? { evaluator_id: payout.evaluatorId, evaluator_fee_usd: usd(payout.evaluatorMicros ?? '0') }
        : {}),
      counterparty_id: escrow.counterpartyId,
      released_at: escrow.releasedAt,
      message: `Released $${usd(payout.counterpartyMicros)} to ${escrow.counterpartyId} (commission $${usd(payout.commissionMicros)}${payout.evaluatorId !== undefined ? `, evaluator fee $${usd(payout.evaluatorMicros ?? '0')}` : ''}).`,
    };
  }

  /** The evaluator sends the work back (funded again) or, with refund: true, refunds in full. */
  @Post('reject/:id')
  @HttpCode(200)
  @UseGuards(AgentAuthGuard)
  async reject(@Req() request: AuthenticatedRequest, @Param('id') escrowId: string, @Body() body: unknown) {
    const input = parseInput(rejectBodySchema, body);
    if (typeof input.reason !== 'string')
      throw new DomainError(
        escrowErrors.invalidRejectReason,
        'reason must be a string (1 to 2000 characters)',
      );
    if (input.refund !== undefined && typeof input.refund !== 'boolean')
      throw new DomainError(ErrorCode.invalidRequest, 'refund must be true or false');
    const escrow = await this.act(escrowCommands.reject, request, escrowId, {
      reason: input.reason,
      refund: input.refund === true,
    });
    const refunded = escrow.status === 'refunded';
    return {
      escrow_id: escrow.escrowId,
      status: escrow.status,
      rejection_reason: escrow.rejectReason,
      rejected_at: escrow.rejectedAt,
      refunded,
      ...(refunded ? { amount_refunded: usd(escrow.amountMicros), refunded_to: escrow.creatorId } : {}),
      message: refunded
        ? `Rejected: $${usd(escrow.amountMicros)} returned to the creator.`
        : 'Rejected: the escrow is funded again; the counterparty may complete it again.',
      ...(refunded
        ? {}
        : {
            next_step: `The counterparty completes again with POST /escrow/complete/${escrow.escrowId} before auto_release_at (${escrow.autoReleaseAt}); otherwise it is refunded then.`,
          }),
    };
  }

  /** The creator's half of a cancel by agreement: refunds only once the counterparty consents. */
  @Post('cancel/:id')
  @HttpCode(200)
  @UseGuards(AgentAuthGuard)
  async cancel(@Req() request: AuthenticatedRequest, @Param('id') escrowId: string) {
    const escrow = await this.act(escrowCommands.requestCancel, request, escrowId);
    return cancelView(escrow, 'creator');
  }

  /** The counterparty's half of a cancel by agreement. */
  @Post('consent-cancel/:id')
  @HttpCode(200)
  @UseGuards(AgentAuthGuard)
  async consentCancel(@Req() request: AuthenticatedRequest, @Param('id') escrowId: string) {
    const escrow = await this.act(escrowCommands.consentCancel, request, escrowId);
    return cancelView(escrow, 'counterparty');
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
  reject: '/escrow/reject/{escrow_id}',
  cancel: '/escrow/cancel/{escrow_id}',
  'consent-cancel': '/escrow/consent-cancel/{escrow_id}',
};

/**
 * `evaluator_agent_id` (an agent id; the service checks it is a third, existing agent) and
 * `evaluator_fee_bps` (an integer 0..1000, only with an evaluator), as command fields.
 */
function parseEvaluator(
  evaluatorAgentId: unknown,
  feeBps: unknown,
): { evaluatorId?: string; evaluatorFeeBps?: number } {
  const hasEvaluator = evaluatorAgentId !== undefined && evaluatorAgentId !== null;
  if (hasEvaluator && (typeof evaluatorAgentId !== 'string' || !AGENT_ID_PATTERN.test(evaluatorAgentId))) {
    throw new DomainError(
      escrowErrors.invalidEvaluator,
      'evaluator_agent_id must be an agent id (ag_ + 12 hex)',
    );
  }
  if (feeBps === undefined || feeBps === null)
    return hasEvaluator ? { evaluatorId: evaluatorAgentId as string } : {};
  if (
    typeof feeBps !== 'number' ||
    !Number.isSafeInteger(feeBps) ||
    feeBps < 0 ||
    feeBps > ESCROW_LIMITS.maxEvaluatorFeeBps
  ) {
    throw new DomainError(
      escrowErrors.invalidEvaluatorFee,
      `evaluator_fee_bps must be an integer from 0 to ${ESCROW_LIMITS.maxEvaluatorFeeBps}`,
    );
  }
  if (!hasEvaluator)
    throw new DomainError(escrowErrors.invalidEvaluatorFee, 'evaluator_fee_bps needs an evaluator_agent_id');
  return { evaluatorId: evaluatorAgentId as string, evaluatorFeeBps: feeBps };
}

/** The answer to either half of a cancel by agreement: recorded and waiting, or refunded. */
function cancelView(escrow: EscrowView, caller: 'creator' | 'counterparty') {
  const cancelled = escrow.status === 'refunded';
  const waitingFor = caller === 'creator' ? 'counterparty' : 'creator';
  return {
    escrow_id: escrow.escrowId,
    status: escrow.status,
    cancelled,
    cancel_requested_at: escrow.cancelRequestedAt,
    cancel_consented_at: escrow.cancelConsentedAt,
    ...(cancelled
      ? {
          amount_refunded: usd(escrow.amountMicros),
          refunded_to: escrow.creatorId,
          refunded_at: escrow.refundedAt,
        }
      : {}),
    message: cancelled
      ? `Cancelled by agreement: $${usd(escrow.amountMicros)} returned to the creator.`
      : `Recorded; nothing moves until the ${waitingFor} agrees (${
          waitingFor === 'counterparty'
            ? `POST /escrow/consent-cancel/${escrow.escrowId}`
            : `POST /escrow/cancel/${escrow.escrowId}`
        }).`,
  };
}

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
          ...(escrow.payout.evaluatorId !== undefined
            ? { evaluator_fee: usd(escrow.payout.evaluatorMicros ?? '0') }
            : {}),
        }
      : null,
    // docs/adr/0016: the evaluator (null: the creator releases), what was handed over, the
    // evaluator's last rejection and the two halves of a cancel by agreement.
    evaluator_id: escrow.evaluatorId,
    evaluator_fee_bps: escrow.evaluatorFeeBps,
    deliverable: escrow.deliverable,
    rejection_reason: escrow.rejectReason,
    rejected_at: escrow.rejectedAt,
    cancel_requested_at: escrow.cancelRequestedAt,
    cancel_consented_at: escrow.cancelConsentedAt,
    ...milestonesField(escrow),
  };
}
