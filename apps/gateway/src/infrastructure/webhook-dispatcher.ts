import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { WEBHOOK_DISABLED_NOTICE, webhookHeaders } from '@pf/contracts';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { GatewayConfig } from '../config.js';
import { afterFailure, type RetryPolicy } from '../domain/webhook.js';
import { signatureHeader, type TargetPolicy } from './webhook-signing.js';
import { AgentNotices } from './agent-notices.js';
import { WebhookSecrets } from './webhook-secrets.js';
import { postSigned, type SendLimits } from './webhook-sender.js';
import { WebhookStore, type LeasedEndpoint } from './webhook-store.js';

/** Deliveries one lease sends at most before the endpoint goes back to the pool (fairness). */
const DELIVERIES_PER_LEASE_MAX = 50;
/** How often a replica deletes old delivered rows, and how many at most per pass. */
const SWEEP_INTERVAL_MS = 10 * 60_000;
const SWEEP_BATCH_ROWS = 10_000;
/** Lease slack beyond one send's timeout: the database round trips around it. */
const LEASE_MARGIN_MS = 5_000;

export function retryPolicy(config: GatewayConfig): RetryPolicy {
  return {
    retryInitialMs: config.WEBHOOK_RETRY_INITIAL_MS,
    retryMaxMs: config.WEBHOOK_RETRY_MAX_MS,
    disableAfterFailures: config.WEBHOOK_DISABLE_AFTER_FAILURES,
    disableAfterMs: config.WEBHOOK_DISABLE_AFTER_MS,
  };
}

export function targetPolicy(config: GatewayConfig): TargetPolicy {
  return { allowLoopback: config.WEBHOOK_ALLOW_LOOPBACK, allowPrivate: config.WEBHOOK_ALLOW_PRIVATE };
}

/**
 * Sends queued deliveries (ADR 0020). Every replica polls; each leases whole endpoints
 * (SKIP LOCKED), so one endpoint is served by one replica at a time and its deliveries go out in
 * queue order, one by one: a failure stops that endpoint (its head is retried with backoff)
 * and no other. A replica that dies mid-send loses its lease after it expires and another one
 * sends the same delivery again: at least once, with the same event id for the receiver to
 * deduplicate.
 */
@Injectable()
export class WebhookDispatcher implements OnApplicationBootstrap, OnModuleDestroy {
  private stopped = false;
  private nextSweepAtMs = 0;
  private loop?: Promise<void>;
  private wake?: () => void;

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext<GatewayConfig>,
    private readonly store: WebhookStore,
    @Inject(WebhookSecrets) private readonly secrets: WebhookSecrets | null,
    private readonly notices: AgentNotices,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.secrets) {
      this.context.logger.info('webhooks are off: WEBHOOK_SECRETS_KEY is not set');
      return;
    }
    this.loop = this.run();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { WEBHOOK_CONCURRENCY, WEBHOOK_POLL_INTERVAL_MS, WEBHOOK_TIMEOUT_MS } = this.context.config;
    const leaseMs = WEBHOOK_TIMEOUT_MS + LEASE_MARGIN_MS;
    while (!this.stopped) {
      let claimed = 0;
      try {
        const endpoints = await this.store.claim(WEBHOOK_CONCURRENCY, leaseMs);
        claimed = endpoints.length;
        await Promise.all(endpoints.map((endpoint) => this.serveOrRelease(endpoint, leaseMs)));
        await this.sweepIfDue();
      } catch (error) {
        this.context.logger.warn({ err: error }, 'webhook dispatch pass failed');
      }
      // A full claim means more may be due: go again at once; otherwise wait for the next poll.
      if (claimed < WEBHOOK_CONCURRENCY && !this.stopped) await this.sleep(WEBHOOK_POLL_INTERVAL_MS);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** A failure outside a send (Postgres, an unreadable secret) hands the endpoint back at once. */
  private async serveOrRelease(endpoint: LeasedEndpoint, leaseMs: number): Promise<void> {
    try {
      await this.serve(endpoint, leaseMs);
    } catch (error) {
      this.context.logger.warn({ err: error, webhookId: endpoint.webhookId }, 'webhook dispatch failed');
      await this.store.release(endpoint).catch(() => undefined);
    }
  }

  /** Delivered rows older than the retention are deleted, a bounded batch at a time. */
  private async sweepIfDue(): Promise<void> {
    if (Date.now() < this.nextSweepAtMs) return;
    this.nextSweepAtMs = Date.now() + SWEEP_INTERVAL_MS;
    await this.store.expireDelivered(
      this.context.config.WEBHOOK_DELIVERY_RETENTION_HOURS * 3_600_000,
      SWEEP_BATCH_ROWS,
    );
  }

  /** Sends the endpoint's deliveries in order while they succeed and the lease lasts. */
  private async serve(endpoint: LeasedEndpoint, leaseMs: number): Promise<void> {
    const { config } = this.context;
    const limits: SendLimits = {
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      responseMaxBytes: config.WEBHOOK_RESPONSE_MAX_BYTES,
    };
    const leaseEndsAtMs = Date.now() + leaseMs;
    const secret = this.secrets!.open(endpoint.webhookId, endpoint.secretSealed);
    for (let sent = 0; sent < DELIVERIES_PER_LEASE_MAX && !this.stopped; sent++) {
      if (Date.now() + limits.timeoutMs + LEASE_MARGIN_MS / 2 > leaseEndsAtMs) break;
      const delivery = await this.store.head(endpoint.webhookId);
      if (!delivery) break;
      const body = delivery.body;
      const outcome = await postSigned(
        new URL(endpoint.url),
        body,
        {
          [webhookHeaders.signature]: signatureHeader(secret, body, Math.floor(Date.now() / 1000)),
          [webhookHeaders.eventId]: delivery.eventId,
          [webhookHeaders.eventType]: delivery.eventType,
          [webhookHeaders.webhookId]: endpoint.webhookId,
        },
        targetPolicy(config),
        limits,
      );
      if (outcome.ok) {
        if (!(await this.store.delivered(endpoint, delivery.deliverySeq, outcome.status!))) return;
        endpoint.consecutiveFailures = 0;
        endpoint.failingSinceMs = null;
        continue;
      }
      await this.failed(endpoint, delivery.deliverySeq, {
        status: outcome.status,
        error: outcome.error ?? 'failed',
      });
      return;
    }
    await this.store.release(endpoint);
  }

  private async failed(
    endpoint: LeasedEndpoint,
    deliverySeq: string,
    outcome: { status: number | null; error: string },
  ): Promise<void> {
    const nowMs = Date.now();
    const decision = afterFailure(
      {
        consecutiveFailures: endpoint.consecutiveFailures + 1,
        failingSinceMs: endpoint.failingSinceMs ?? nowMs,
      },
      nowMs,
      retryPolicy(this.context.config),
      Math.random(),
    );
    const reason = `${endpoint.consecutiveFailures + 1} failed attempts in a row; last: ${outcome.error}`;
    await this.store.failed(
      endpoint,
      deliverySeq,
      outcome,
      decision.disable ? { disable: true, reason } : { disable: false, retryInMs: decision.retryInMs },
    );
    if (!decision.disable) return;
    this.context.logger.warn(
      { webhookId: endpoint.webhookId, agentId: endpoint.agentId },
      'webhook disabled',
    );
    this.notices.publish({
      agentId: endpoint.agentId,
      type: WEBHOOK_DISABLED_NOTICE,
      data: {
        webhook_id: endpoint.webhookId,
        url: endpoint.url,
        reason,
        disabled_at: new Date(nowMs).toISOString(),
      },
    });
  }
}
