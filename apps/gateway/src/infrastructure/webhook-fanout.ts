import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { eventStreams, type EventEnvelope, type WebhookEventSource } from '@pf/contracts';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { escrowRestEvents, jobRestEvents, toRestEvent, type RestEventMappers } from '../api/rest-events.js';
import type { GatewayConfig } from '../config.js';
import { EscrowEventFeed } from './escrow-event-feed.js';
import { gatewayConsumerSettings, runGatewayConsumer } from './gateway-consumers.js';
import { JobEventFeed } from './job-event-feed.js';
import type { StreamEventFeed } from './stream-event-feed.js';
import { WebhookStore, type NewDelivery } from './webhook-store.js';

const NEW_DURABLE_LOOKBACK_MS = 60_000;

interface Source {
  name: WebhookEventSource;
  stream: { name: string; subjects: string };
  feed: StreamEventFeed;
  mappers: RestEventMappers;
}

/**
 * Turns each escrow and market event into queued deliveries for the webhooks that asked for it
 * and whose owner may see it: the same rule as the SSE feeds (`isVisibleTo`), the same REST
 * shape. One durable consumer per stream with one event in flight across all replicas
 * (max_ack_pending 1), so an endpoint's queue receives a stream's events in log order; the queue
 * is idempotent on (endpoint, event id), so a redelivery queues nothing twice.
 */
@Injectable()
export class WebhookFanout implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly stops: Array<() => Promise<void>> = [];

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext<GatewayConfig>,
    private readonly store: WebhookStore,
    private readonly escrows: EscrowEventFeed,
    private readonly jobs: JobEventFeed,
  ) {}

  onApplicationBootstrap(): void {
    const sources: Source[] = [
      { name: 'escrow', stream: eventStreams.escrow, feed: this.escrows, mappers: escrowRestEvents },
      { name: 'market', stream: eventStreams.market, feed: this.jobs, mappers: jobRestEvents },
    ];
    // An existing durable keeps its place. A new one (first deployment, a fresh prefix) starts a
    // minute back rather than at the stream's start: there were no webhooks before, and replaying
    // a year of events one at a time would delay the first deliveries; a minute covers events
    // published while the gateway was starting.
    const settings = {
      ...gatewayConsumerSettings,
      maxInFlight: 1,
      maxAckPending: 1,
      deliverFrom: { time: new Date(Date.now() - NEW_DURABLE_LOOKBACK_MS) },
    };
    for (const source of sources) {
      this.stops.push(
        runGatewayConsumer(this.context, {
          stream: source.stream.name,
          subjects: source.stream.subjects,
          durable: `gateway-webhooks-${source.name}`,
          handler: (envelope) => this.fanOut(source, envelope),
          settings,
        }),
      );
    }
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all(this.stops.map((stop) => stop()));
  }

  private async fanOut(source: Source, envelope: EventEnvelope): Promise<void> {
    const subscribers = await this.store.subscribers(source.name, envelope.type);
    if (subscribers.length === 0) return;
    const visible = new Map<string, boolean>();
    const deliveries: NewDelivery[] = [];
    let body: string | undefined;
    for (const { webhookId, agentId } of subscribers) {
      if (!visible.has(agentId)) visible.set(agentId, await source.feed.isVisibleTo(agentId, envelope));
      if (!visible.get(agentId)) continue;
      body ??= JSON.stringify(toRestEvent(envelope, source.mappers));
      deliveries.push({
        webhookId,
        eventId: envelope.id,
        eventType: `${source.name}.${envelope.type}`,
        body,
      });
    }
    await this.store.enqueue(deliveries);
  }
}
