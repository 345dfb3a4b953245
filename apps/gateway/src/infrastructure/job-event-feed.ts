import { Inject, Injectable } from '@nestjs/common';
import {
  DomainError,
  eventStreams,
  marketCommands,
  marketErrors,
  type EventEnvelope,
  type JobView,
} from '@pf/contracts';
import { COMMAND_CLIENT, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import type { GatewayConfig } from '../config.js';
import { StreamEventFeed } from './stream-event-feed.js';

/** Jobs whose poster is remembered; a poster never changes, so entries never go stale. */
const POSTER_CACHE_MAX_ENTRIES = 50_000;
/** Events that end the bidding: every bidder of the job is told (so a loser learns it lost). */
const OUTCOME_EVENT_TYPES = new Set(['job_awarded', 'award_failed', 'job_cancelled']);

/**
 * `GET /jobs/events/stream` behind the HTTP layer: the market's events (`MARKET_EVENTS`) that
 * concern the agent. An agent sees every event of the jobs it posted (bids arriving, the award,
 * completion, settlement), the events that name it (its bids, its award, race won or lost), and
 * the outcome of the jobs it bid on. Consumers, resumption and limits: StreamEventFeed.
 */
@Injectable()
export class JobEventFeed extends StreamEventFeed {
  private readonly posters = new Map<string, string | null>();

  constructor(
    @Inject(SERVICE_CONTEXT) context: ServiceContext<GatewayConfig>,
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
  ) {
    super(context, eventStreams.market, 'job event stream');
  }

  async isVisibleTo(agentId: string, envelope: EventEnvelope): Promise<boolean> {
    const data = envelope.data as {
      jobId?: unknown;
      posterId?: unknown;
      workerId?: unknown;
      awards?: Array<{ workerId?: unknown }>;
    };
    if (typeof data.jobId !== 'string') return false;
    if (envelope.type === 'job_posted' && typeof data.posterId === 'string')
      this.remember(data.jobId, data.posterId);
    if (
      data.workerId === agentId ||
      (Array.isArray(data.awards) && data.awards.some((award) => award.workerId === agentId))
    )
      return true;
    if ((await this.posterOf(data.jobId)) === agentId) return true;
    if (!OUTCOME_EVENT_TYPES.has(envelope.type)) return false;
    // A bidder sees the bids (GET /jobs/{id} as itself); the bidding's outcome is then its news too.
    const job = await this.job(data.jobId, agentId);
    return job?.bids?.some((bid) => bid.workerId === agentId) === true;
  }

  private async posterOf(jobId: string): Promise<string | null> {
    const cached = this.posters.get(jobId);
    if (cached !== undefined) return cached;
    return this.remember(jobId, (await this.job(jobId, undefined))?.posterId ?? null);
  }

  /** A failed lookup throws: the stream ends and the client resumes from its last id, so nothing is skipped. */
  private async job(jobId: string, viewerId: string | undefined): Promise<JobView | null> {
    try {
      return await this.commands.request<JobView>(
        marketCommands.get,
        { jobId, viewerId },
        this.context.config.COMMAND_TIMEOUT_MS,
      );
    } catch (error) {
      if (error instanceof DomainError && error.code === marketErrors.jobNotFound) return null;
      throw error;
    }
  }

  private remember(jobId: string, posterId: string | null): string | null {
    if (this.posters.size >= POSTER_CACHE_MAX_ENTRIES && !this.posters.has(jobId))
      this.posters.delete(this.posters.keys().next().value!);
    this.posters.set(jobId, posterId);
    return posterId;
  }
}
