import { Inject, Injectable } from '@nestjs/common';
import { eventStreams, type EventEnvelope } from '@pf/contracts';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { GatewayConfig } from '../config.js';
import { StreamEventFeed } from './stream-event-feed.js';

/**
 * Escrow events everyone may see (the dashboard's live view): what `GET /escrow/{id}` already
 * shows anyone — that an escrow exists, its status and amount. Not `opened`/`rejected` (for the
 * API such an escrow does not exist yet, or never did). The HTTP layer strips every other field
 * (parties, descriptions, summaries, reasons). The audience is a client IP, so the per-audience
 * limit is per IP.
 */
const PUBLIC_ESCROW_TYPES = new Set([
  'funded',
  'completed',
  'disputed',
  'released',
  'refunded',
  'declined',
  'cancelled',
  'resolved',
]);

/** Job events everyone may see: the board's changes (`GET /jobs` is public). Not the market's bookkeeping. */
const PUBLIC_JOB_TYPES = new Set([
  'job_posted',
  'bid_placed',
  'bid_withdrawn',
  'award_started',
  'job_awarded',
  'award_failed',
  'job_completed',
  'race_won',
  'race_lost',
  'award_settled',
  'job_cancelled',
]);

@Injectable()
export class PublicEscrowEventFeed extends StreamEventFeed {
  constructor(@Inject(SERVICE_CONTEXT) context: ServiceContext<GatewayConfig>) {
    super(context, eventStreams.escrow, 'public event stream');
  }

  isVisibleTo(_audience: string, envelope: EventEnvelope): Promise<boolean> {
    return Promise.resolve(PUBLIC_ESCROW_TYPES.has(envelope.type));
  }

  protected override audienceLimit() {
    return { max: this.context.config.PUBLIC_EVENT_STREAMS_PER_IP_MAX, noun: 'client address' };
  }
}

@Injectable()
export class PublicJobEventFeed extends StreamEventFeed {
  constructor(@Inject(SERVICE_CONTEXT) context: ServiceContext<GatewayConfig>) {
    super(context, eventStreams.market, 'public job event stream');
  }

  isVisibleTo(_audience: string, envelope: EventEnvelope): Promise<boolean> {
    return Promise.resolve(PUBLIC_JOB_TYPES.has(envelope.type));
  }

  protected override audienceLimit() {
    return { max: this.context.config.PUBLIC_EVENT_STREAMS_PER_IP_MAX, noun: 'client address' };
  }
}
