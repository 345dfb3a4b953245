import { createHash } from 'node:crypto';
import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  AWARD_POLICIES,
  casinoErrors,
  DomainError,
  ErrorCode,
  escrowErrors,
  JOB_STATUSES,
  MARKET_LIMITS,
  marketCommands,
  marketErrors,
  type BidView,
  type JobListReply,
  type JobView,
} from '@pf/contracts';
import { COMMAND_CLIENT, CONFIG } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import { maxAmountMicros, type GatewayConfig } from '../config.js';
import { refuseSubKey, requireAction } from './mandate.js';
import { AgentAuthGuard, bearerToken, type AuthenticatedRequest } from './auth.guard.js';
import { parseAmount, parseInput, usd } from './request.js';

const MS_PER_HOUR = 3_600_000;
const MS_PER_MINUTE = 60_000;
const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** Fields are checked one by one below, each with the API's own error code. */
export const postJobBodySchema = z.object({
  title: z.unknown().optional(),
  description: z.unknown().optional(),
  budget_usd: z.unknown().optional(),
  bid_window_minutes: z.unknown().optional(),
  timeout_hours: z.unknown().optional(),
  tags: z.unknown().optional(),
  award_policy: z.unknown().optional(),
  race: z.unknown().optional(),
  invite: z.unknown().optional(),
});

export const listJobsQuerySchema = z.object({
  status: z.enum([...JOB_STATUSES, 'all']).default('open'),
  tag: z.string().max(MARKET_LIMITS.maxTagChars).optional(),
  cursor: z.string().max(40).optional(),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MARKET_LIMITS.maxListLimit)
    .default(MARKET_LIMITS.defaultListLimit),
});

export const myJobsQuerySchema = z.object({
  role: z.enum(['poster', 'worker']).default('poster'),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MARKET_LIMITS.maxListLimit)
    .default(MARKET_LIMITS.defaultListLimit),
});

export const placeBidBodySchema = z.object({
  price_usd: z.unknown().optional(),
  eta_minutes: z.unknown().optional(),
  note: z.unknown().optional(),
});
export const awardBodySchema = z
  .object({
    bid_id: z.string().max(200).optional(),
    bid_ids: z.array(z.string().max(200)).min(1).max(MARKET_LIMITS.maxRaceWorkers).optional(),
  })
  .refine(
    (body) => (body.bid_id === undefined) !== (body.bid_ids === undefined),
    'give bid_id, or bid_ids for a race',
  );

/**
 * The job board (docs/API.md, "Jobs"): orchestrators post jobs, workers bid, the poster awards
 * and the award becomes an escrow. Static routes (`/jobs/mine`) win over `/jobs/:id`.
 */
@Controller('jobs')
export class JobsController {
  constructor(
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
    @Inject(CONFIG) private readonly config: GatewayConfig,
    private readonly auth: AgentAuthGuard,
  ) {}

  @Post()
  @HttpCode(201)
  @UseGuards(AgentAuthGuard)
  async post(@Req() request: AuthenticatedRequest, @Body() body: unknown) {
    const input = parseInput(postJobBodySchema, body);
    const key = idempotencyKey(request);
    const job = await this.commands
      .request<JobView>(marketCommands.post, {
        jobId: key ? `job_${derivedId(`post\n${request.agentId}\n${key}`).slice(0, 16)}` : undefined,
        posterId: request.agentId,
        title: requireString(input.title, marketErrors.invalidTitle, 'title'),
        description: requireString(input.description, escrowErrors.invalidDescription, 'description'),
        budgetMicros: this.budget(input.budget_usd).toString(),
        bidWindowMs: positiveNumber(
          input.bid_window_minutes ?? MARKET_LIMITS.defaultBidWindowMinutes,
          marketErrors.invalidBidWindow,
          'bid_window_minutes',
          MS_PER_MINUTE,
        ),
        timeoutMs: positiveNumber(
          input.timeout_hours ?? MARKET_LIMITS.defaultTimeoutHours,
          escrowErrors.invalidTimeout,
          'timeout_hours',
          MS_PER_HOUR,
        ),
        tags: stringList(input.tags ?? [], marketErrors.invalidTags, 'tags'),
        awardPolicy: awardPolicy(input.award_policy),
        race: race(input.race),
        invite:
          input.invite === undefined || input.invite === null
            ? null
            : stringList(input.invite, marketErrors.invalidInvite, 'invite'),
      })
      .catch(apiError);
    return {
      ...jobBody(job),
      message: `Job posted. Workers bid until ${job.bidsCloseAt}; no money is locked until you award it.`,
      next_steps: {
        workers: `POST /jobs/${job.jobId}/bids {"price_usd": <= ${usd(job.budgetMicros)}, "eta_minutes": 30}`,
        poster:
          job.awardPolicy === 'manual'
            ? `GET /jobs/${job.jobId} to see bids, then POST /jobs/${job.jobId}/award {"bid_id": "..."}${job.race ? ' or {"bid_ids": [...]} for the race' : ''}`
            : `the market awards by ${job.awardPolicy} when the bid window closes`,
      },
    };
  }

  @Get()
  async list(@Query() query: unknown) {
    const input = parseInput(listJobsQuerySchema, query, 'query');
    const reply = await this.commands.request<JobListReply>(marketCommands.list, input);
    return { jobs: reply.jobs.map(jobBody), next_cursor: reply.nextCursor };
  }

  @Get('mine')
  @UseGuards(AgentAuthGuard)
  async mine(@Req() request: AuthenticatedRequest, @Query() query: unknown) {
    const input = parseInput(myJobsQuerySchema, query, 'query');
    const reply = await this.commands.request<JobListReply>(marketCommands.mine, {
      agentId: request.agentId,
      ...input,
    });
    return { jobs: reply.jobs.map(jobBody) };
  }

  /** Anyone sees the job and its bid count; the poster and the bidders also see the bids. */
  @Get(':id')
  async get(@Req() request: FastifyRequest, @Param('id') jobId: string) {
    const viewerId =
      request.headers.authorization === undefined
        ? undefined
        : await this.auth.authenticate(bearerToken(request));
    return jobBody(await this.commands.request<JobView>(marketCommands.get, { jobId, viewerId }));
  }

  @Post(':id/bids')
  @HttpCode(201)
  @UseGuards(AgentAuthGuard)
  async bid(@Req() request: AuthenticatedRequest, @Param('id') jobId: string, @Body() body: unknown) {
    const input = parseInput(placeBidBodySchema, body);
    const priceMicros = this.price(input.price_usd);
    const etaMinutes = input.eta_minutes;
    if (typeof etaMinutes !== 'number' || !Number.isSafeInteger(etaMinutes) || etaMinutes < 1)
      throw new DomainError(
        marketErrors.invalidEta,
        'eta_minutes must be a whole number of minutes, at least 1',
      );
    if (input.note !== undefined && input.note !== null && typeof input.note !== 'string')
      throw new DomainError(ErrorCode.invalidRequest, 'note must be a string');
    const reply = await this.commands
      .request<{ job: JobView; bidId: string }>(marketCommands.bid, {
        jobId,
        workerId: request.agentId,
        priceMicros: priceMicros.toString(),
        etaMinutes,
        note: input.note ?? null,
        commandId: commandIdOf(request, `bid\n${jobId}`),
      })
      .catch(apiError);
    return {
      bid_id: reply.bidId,
      job_id: jobId,
      price_usd: usd(priceMicros),
      eta_minutes: etaMinutes,
      status: 'live',
      message:
        'Bid placed. A new bid replaces this one; DELETE /jobs/{id}/bids/mine withdraws it. You are told on GET /events/stream when the job is awarded.',
    };
  }

  @Delete(':id/bids/mine')
  @HttpCode(200)
  @UseGuards(AgentAuthGuard)
  async withdraw(@Req() request: AuthenticatedRequest, @Param('id') jobId: string) {
    const job = await this.commands.request<JobView>(marketCommands.withdraw, {
      jobId,
      workerId: request.agentId,
      commandId: commandIdOf(request, `withdraw\n${jobId}`),
    });
    return { job_id: job.jobId, status: 'withdrawn', bid_count: job.bidCount, message: 'Bid withdrawn.' };
  }

  @Post(':id/award')
  @HttpCode(200)
  @UseGuards(AgentAuthGuard)
  async award(@Req() request: AuthenticatedRequest, @Param('id') jobId: string, @Body() body: unknown) {
    // The award's escrows are created by the market, which does not carry a key id (ADR 0019).
    refuseSubKey(request, 'award a job');
    const input = parseInput(awardBodySchema, body);
    const bidIds = input.bid_ids ?? [input.bid_id!];
    const job = await this.commands
      .request<JobView>(marketCommands.award, { jobId, actorId: request.agentId, bidIds })
      .catch(apiError);
    return {
      ...jobBody(job),
      message: job.race
        ? `Race started: ${job.awards.length} escrows funded. The first worker to complete wins${job.race.autoRelease ? ' and is paid automatically' : ''}; the others are refunded to you.`
        : `Awarded: escrow ${job.awards[0]?.escrowId} is funded with $${usd(job.awards[0]?.priceMicros ?? '0')}. The worker completes it with POST /escrow/complete/{escrow_id}; you release with POST /escrow/release/{escrow_id}.`,
    };
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @UseGuards(AgentAuthGuard)
  async cancel(@Req() request: AuthenticatedRequest, @Param('id') jobId: string) {
    const job = await this.commands.request<JobView>(marketCommands.cancel, {
      jobId,
      actorId: request.agentId,
      commandId: commandIdOf(request, `cancel\n${jobId}`),
    });
    return {
      ...jobBody(job),
      message: 'Job cancelled. Escrows still funded are refunded to you in full (no commission).',
    };
  }

  /** A race's winner is released through the market (its escrow refuses a direct release). */
  @Post(':id/release')
  @HttpCode(200)
  @UseGuards(AgentAuthGuard)
  async release(@Req() request: AuthenticatedRequest, @Param('id') jobId: string) {
    // Paying the race's winner is a release, as on /escrow/release (ADR 0019).
    requireAction(request, 'escrow_release');
    const job = await this.commands.request<JobView>(marketCommands.release, {
      jobId,
      actorId: request.agentId,
    });
    return { ...jobBody(job), message: 'Release sent: the winner is paid the price minus commission.' };
  }

  private budget(value: unknown): bigint {
    try {
      return parseAmount(value, {
        field: 'budget_usd',
        maxMicros: maxAmountMicros(this.config),
        minMicros: MARKET_LIMITS.minBudgetMicros,
      });
    } catch (error) {
      if (error instanceof DomainError)
        throw new DomainError(marketErrors.invalidBudget, error.message.replace('amount', 'budget_usd'));
      throw error;
    }
  }

  private price(value: unknown): bigint {
    try {
      return parseAmount(value, {
        field: 'price_usd',
        maxMicros: maxAmountMicros(this.config),
        minMicros: MARKET_LIMITS.minBudgetMicros,
      });
    } catch (error) {
      if (error instanceof DomainError) throw new DomainError(marketErrors.invalidPrice, error.message);
      throw error;
    }
  }
}

function requireString(value: unknown, code: string, field: string): string {
  if (typeof value !== 'string') throw new DomainError(code, `${field} must be a string`);
  return value;
}

/** A positive number (fractions allowed) of `unitMs` units, in whole milliseconds; the service checks the bounds. */
function positiveNumber(value: unknown, code: string, field: string, unitMs: number): number {
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (
    typeof number !== 'number' ||
    !Number.isFinite(number) ||
    number <= 0 ||
    number * unitMs > Number.MAX_SAFE_INTEGER
  ) {
    throw new DomainError(code, `${field} must be a positive number`);
  }
  return Math.round(number * unitMs);
}

function stringList(value: unknown, code: string, field: string): string[] {
  if (
    !Array.isArray(value) ||
    value.length > 100 ||
    value.some((item) => typeof item !== 'string' || item.length > 200)
  ) {
    throw new DomainError(code, `${field} must be a list of strings`);
  }
  return value as string[];
}

function awardPolicy(value: unknown): string {
  if (value === undefined || value === null) return 'manual';
  if (typeof value !== 'string' || !(AWARD_POLICIES as readonly string[]).includes(value)) {
    throw new DomainError(
      ErrorCode.invalidRequest,
      `award_policy must be one of ${AWARD_POLICIES.join(', ')}`,
    );
  }
  return value;
}

function race(value: unknown): { workers: number; autoRelease: boolean } | null {
  if (value === undefined || value === null) return null;
  const raw = value as { workers?: unknown; auto_release?: unknown };
  if (typeof value !== 'object' || typeof raw.workers !== 'number' || !Number.isSafeInteger(raw.workers)) {
    throw new DomainError(
      marketErrors.raceSizeInvalid,
      `race must be {"workers": ${MARKET_LIMITS.minRaceWorkers}..${MARKET_LIMITS.maxRaceWorkers}, "auto_release": true|false}`,
    );
  }
  if (raw.auto_release !== undefined && typeof raw.auto_release !== 'boolean')
    throw new DomainError(ErrorCode.invalidRequest, 'race.auto_release must be true or false');
  return { workers: raw.workers, autoRelease: raw.auto_release ?? true };
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

function commandIdOf(request: AuthenticatedRequest, what: string): string | undefined {
  const key = idempotencyKey(request);
  return key ? `idem:${derivedId(`${what}\n${request.agentId}\n${key}`).slice(0, 32)}` : undefined;
}

/** Service refusals in the API's terms: the balance in USD. */
function apiError(error: unknown): never {
  if (error instanceof DomainError && error.code === casinoErrors.insufficientBalance) {
    const available = error.details?.available_micros;
    throw new DomainError(
      error.code,
      'insufficient balance to fund this award; the job stays open',
      typeof available === 'string' ? { balance_usd: usd(available) } : undefined,
    );
  }
  throw error;
}

function bidBody(bid: BidView) {
  return {
    bid_id: bid.bidId,
    worker_id: bid.workerId,
    price_usd: usd(bid.priceMicros),
    eta_minutes: bid.etaMinutes,
    note: bid.note,
    status: bid.status,
    placed_at: bid.placedAt,
  };
}

export function jobBody(job: JobView) {
  return {
    job_id: job.jobId,
    poster_id: job.posterId,
    title: job.title,
    description: job.description,
    budget_usd: usd(job.budgetMicros),
    status: job.status,
    tags: job.tags,
    award_policy: job.awardPolicy,
    race: job.race ? { workers: job.race.workers, auto_release: job.race.autoRelease } : null,
    invite: job.invite,
    timeout_hours: job.timeoutMs / MS_PER_HOUR,
    posted_at: job.postedAt,
    bids_close_at: job.bidsCloseAt,
    bid_count: job.bidCount,
    ...(job.bids ? { bids: job.bids.map(bidBody) } : {}),
    awards: job.awards.map((award) => ({
      bid_id: award.bidId,
      worker_id: award.workerId,
      escrow_id: award.escrowId,
      price_usd: usd(award.priceMicros),
      escrow_status: award.escrowStatus,
      race: award.race,
    })),
    winner_escrow_id: job.winnerEscrowId,
  };
}
