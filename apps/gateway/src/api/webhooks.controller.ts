import { randomUUID } from 'node:crypto';
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
import { z } from 'zod';
import {
  DomainError,
  ErrorCode,
  WEBHOOK_EVENT_FILTER_PATTERN,
  WEBHOOK_ID_PATTERN,
  WEBHOOK_LIMITS,
  WEBHOOK_TEST_EVENT_TYPE,
  webhookErrors,
} from '@pf/contracts';
import { CONFIG } from '@pf/platform';
import type { GatewayConfig } from '../config.js';
import { targetPolicy } from '../infrastructure/webhook-dispatcher.js';
import { WebhookSecrets } from '../infrastructure/webhook-secrets.js';
import { checkTarget } from '../infrastructure/webhook-sender.js';
import { WebhookStore, type DeliveryRow, type WebhookRow } from '../infrastructure/webhook-store.js';
import { AgentAuthGuard, type AuthenticatedRequest } from './auth.guard.js';
import { parseInput } from './request.js';

export const createWebhookBodySchema = z.object({
  url: z.unknown(),
  events: z.unknown(),
});

export const deliveriesQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(WEBHOOK_LIMITS.maxDeliveriesPage).default(20),
});

/**
 * Webhooks (docs/API.md, "Webhooks"; ADR 0020): an agent's endpoints, each receiving the events
 * of its own escrows and jobs, signed with a secret shown once. Another agent's webhook answers
 * as an unknown one (404 webhook_not_found): its existence is nobody else's business.
 */
@Controller('webhooks')
@UseGuards(AgentAuthGuard)
export class WebhooksController {
  constructor(
    @Inject(WebhookStore) private readonly store: WebhookStore,
    @Inject(WebhookSecrets) private readonly secrets: WebhookSecrets | null,
    @Inject(CONFIG) private readonly config: GatewayConfig,
  ) {}

  @Post()
  @HttpCode(201)
  async create(@Req() request: AuthenticatedRequest, @Body() body: unknown) {
    const input = parseInput(createWebhookBodySchema, body);
    const url = this.parseUrl(input.url);
    const events = parseFilters(input.events);
    const secrets = this.configured();
    const refused = await checkTarget(url, targetPolicy(this.config));
    if (refused)
      throw new DomainError(webhookErrors.webhookTargetRefused, `webhook target refused: ${refused}`);
    const secret = WebhookSecrets.newSecret();
    const created = await this.store.create(
      request.agentId!,
      url.toString(),
      events,
      (webhookId) => secrets.seal(webhookId, secret),
      WEBHOOK_LIMITS.maxPerAgent,
    );
    if (!created)
      throw new DomainError(
        webhookErrors.webhookLimitReached,
        `at most ${WEBHOOK_LIMITS.maxPerAgent} webhooks per agent; delete one first`,
      );
    return {
      ...webhookBody(created),
      secret,
      message:
        'Store the secret now: it is shown only once. Verify X-Signature (t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">) and deduplicate on X-Event-Id.',
    };
  }

  @Get()
  async list(@Req() request: AuthenticatedRequest) {
    return { webhooks: (await this.store.list(request.agentId!)).map(webhookBody) };
  }

  @Delete(':id')
  async remove(@Req() request: AuthenticatedRequest, @Param('id') webhookId: string) {
    checkId(webhookId);
    if (!(await this.store.delete(webhookId, request.agentId!))) throw notFound();
    return { webhook_id: webhookId, deleted: true };
  }

  @Get(':id/deliveries')
  async deliveries(
    @Req() request: AuthenticatedRequest,
    @Param('id') webhookId: string,
    @Query() query: unknown,
  ) {
    checkId(webhookId);
    const { limit } = parseInput(deliveriesQuerySchema, query, 'query');
    if (!(await this.store.get(webhookId, request.agentId!))) throw notFound();
    return {
      webhook_id: webhookId,
      deliveries: (await this.store.deliveries(webhookId, limit)).map(deliveryBody),
    };
  }

  /** Queues a `webhook.test` event behind the endpoint's other deliveries (same order, signing, retries). */
  @Post(':id/test')
  @HttpCode(202)
  async test(@Req() request: AuthenticatedRequest, @Param('id') webhookId: string) {
    checkId(webhookId);
    this.configured();
    const webhook = await this.store.get(webhookId, request.agentId!);
    if (!webhook) throw notFound();
    const eventId = randomUUID();
    const occurredAt = new Date().toISOString();
    await this.store.enqueue([
      {
        webhookId,
        eventId,
        eventType: WEBHOOK_TEST_EVENT_TYPE,
        body: JSON.stringify({
          id: eventId,
          type: WEBHOOK_TEST_EVENT_TYPE,
          occurred_at: occurredAt,
          data: { webhook_id: webhookId, message: 'a test delivery' },
        }),
      },
    ]);
    return {
      webhook_id: webhookId,
      event_id: eventId,
      event_type: WEBHOOK_TEST_EVENT_TYPE,
      status: webhook.status,
      message:
        webhook.status === 'active'
          ? "Queued behind this endpoint's other deliveries; see GET /webhooks/{id}/deliveries."
          : 'Queued, but this webhook is disabled: nothing is sent to it. Create a new webhook.',
    };
  }

  private configured(): WebhookSecrets {
    if (!this.secrets)
      throw new DomainError(
        ErrorCode.serviceUnavailable,
        'webhooks are not configured on this server (WEBHOOK_SECRETS_KEY); nothing was written',
      );
    return this.secrets;
  }

  private parseUrl(value: unknown): URL {
    const invalid = (why: string) => new DomainError(webhookErrors.invalidWebhookUrl, `url ${why}`);
    if (typeof value !== 'string' || value.length > WEBHOOK_LIMITS.maxUrlChars)
      throw invalid(`must be a string of at most ${WEBHOOK_LIMITS.maxUrlChars} characters`);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw invalid('is not an absolute URL');
    }
    const protocols = this.config.WEBHOOK_ALLOW_HTTP ? ['https:', 'http:'] : ['https:'];
    if (!protocols.includes(url.protocol))
      throw invalid(`must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
    if (url.username || url.password) throw invalid('must not carry credentials');
    if (url.hash) throw invalid('must not have a #fragment');
    return url;
  }
}

function parseFilters(value: unknown): string[] {
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    value.length > WEBHOOK_LIMITS.maxFilters ||
    !value.every((filter) => typeof filter === 'string' && WEBHOOK_EVENT_FILTER_PATTERN.test(filter))
  )
    throw new DomainError(
      webhookErrors.invalidEventFilter,
      `events must be 1 to ${WEBHOOK_LIMITS.maxFilters} filters such as "escrow.*", "market.*" or "escrow.released"`,
    );
  return [...new Set(value as string[])];
}

function checkId(webhookId: string): void {
  if (!WEBHOOK_ID_PATTERN.test(webhookId))
    throw new DomainError(ErrorCode.invalidRequest, 'webhook id must be wh_ + 16 hex');
}

function notFound(): DomainError {
  return new DomainError(webhookErrors.webhookNotFound, 'you have no webhook with this id');
}

function webhookBody(webhook: WebhookRow) {
  return {
    webhook_id: webhook.webhookId,
    url: webhook.url,
    events: webhook.events,
    status: webhook.status,
    disabled_at: webhook.disabledAt,
    disabled_reason: webhook.disabledReason,
    consecutive_failures: webhook.consecutiveFailures,
    created_at: webhook.createdAt,
  };
}

function deliveryBody(delivery: DeliveryRow) {
  return {
    delivery_id: delivery.deliverySeq,
    event_id: delivery.eventId,
    event_type: delivery.eventType,
    state: delivery.state,
    attempts: delivery.attempts,
    last_attempt_at: delivery.lastAttemptAt,
    last_status: delivery.lastStatus,
    last_error: delivery.lastError,
    delivered_at: delivery.deliveredAt,
    created_at: delivery.createdAt,
  };
}
