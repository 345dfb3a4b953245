import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { EventEnvelope } from '@pf/contracts';
import { CONFIG, LOGGER } from '@pf/platform';
import type { GatewayConfig } from '../config.js';
import { PublicEscrowEventFeed, PublicJobEventFeed } from '../infrastructure/public-event-feeds.js';
import type { StreamEventFeed } from '../infrastructure/stream-event-feed.js';
import { parseLastEventId, SseWriter } from './events-stream.controller.js';
import { escrowRestEvents, toRestEvent } from './rest-events.js';

/** An event as the public feeds send it: ids, status and amounts only (API.md "Live events"). */
export interface PublicEvent {
  id: string;
  type: string;
  stream: string;
  occurred_at: string;
  data: {
    escrow_id?: string;
    job_id?: string;
    status?: string;
    amount_micros?: string;
    commission_micros?: string;
  };
}

/**
 * Only what is public anyway (GET /escrow/{id}, GET /jobs): the escrow or job id, the escrow's
 * new status, its amount and, on a payout, the commission — as exact micro-dollar strings.
 * Every other field of the event (parties, texts, referrers) is left out by construction.
 */
export function publicEvent(envelope: EventEnvelope): PublicEvent {
  const internal = envelope.data as {
    escrowId?: unknown;
    jobId?: unknown;
    amountMicros?: unknown;
    payout?: { commissionMicros?: unknown };
  };
  const data: PublicEvent['data'] = {};
  if (typeof internal.escrowId === 'string') data.escrow_id = internal.escrowId;
  if (typeof internal.jobId === 'string') data.job_id = internal.jobId;
  if (envelope.stream.startsWith('escrow-')) {
    const status = toRestEvent(envelope, escrowRestEvents).data.status;
    if (typeof status === 'string') data.status = status;
    if (typeof internal.amountMicros === 'string') data.amount_micros = internal.amountMicros;
    if (typeof internal.payout?.commissionMicros === 'string')
      data.commission_micros = internal.payout.commissionMicros;
  }
  return {
    id: envelope.id,
    type: envelope.type,
    stream: envelope.stream,
    occurred_at: envelope.occurred_at,
    data,
  };
}

/**
 * `GET /escrow/events/public` and `GET /jobs/events/public`: every escrow and job-board event,
 * reduced to its public fields, for the dashboard (no key: a browser's EventSource opens it).
 * Same framing, heartbeats and `Last-Event-ID` resumption as the agents' streams; limited per
 * client IP (PUBLIC_EVENT_STREAMS_PER_IP_MAX) and per replica (EVENT_STREAMS_MAX).
 */
@Controller()
export class PublicEventsController {
  constructor(
    private readonly escrowFeed: PublicEscrowEventFeed,
    private readonly jobFeed: PublicJobEventFeed,
    @Inject(CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Get('escrow/events/public')
  escrow(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.stream(this.escrowFeed, request, reply);
  }

  @Get('jobs/events/public')
  jobs(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.stream(this.jobFeed, request, reply);
  }

  private async stream(feed: StreamEventFeed, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const query = (request.query ?? {}) as Record<string, unknown>;
    const lastEventId = parseLastEventId(
      request.headers['last-event-id'] ??
        (typeof query.last_event_id === 'string' ? query.last_event_id : undefined),
    );
    const subscription = await feed.subscribe(`ip:${request.ip}`, lastEventId);
    reply.hijack();
    const sink = new SseWriter(reply.raw, this.config.EVENT_STREAM_HEARTBEAT_MS, publicEvent);
    sink.open(reply.getHeaders());
    sink.onClose(() => subscription.close());
    subscription
      .pump(sink)
      .catch((error: unknown) => this.logger.warn({ err: error }, 'public event stream ended'))
      .finally(() => sink.end());
  }
}
