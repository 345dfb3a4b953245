import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamManager,
} from '@nats-io/jetstream';
import {
  DomainError,
  ErrorCode,
  eventStreams,
  marketCommands,
  marketErrors,
  type EventEnvelope,
  type JobView,
} from '@pf/contracts';
import { COMMAND_CLIENT, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { decodeJson, type CommandClient } from '@pf/messaging';
import type { GatewayConfig } from '../config.js';
import type { EventSink, EventSubscription } from './escrow-event-feed.js';

/** Jobs whose poster is remembered; a poster never changes, so entries never go stale. */
const POSTER_CACHE_MAX_ENTRIES = 50_000;
const PULL_BATCH_MESSAGES = 64;
/** Events that end the bidding: every bidder of the job is told (so a loser learns it lost). */
const OUTCOME_EVENT_TYPES = new Set(['job_awarded', 'award_failed', 'job_cancelled']);

/**
 * `GET /jobs/events/stream` behind the HTTP layer: the market's events (`MARKET_EVENTS`) that
 * concern the agent, read through an ephemeral ordered consumer per connection from a stream
 * sequence (the SSE `id:`, so `Last-Event-ID` resumes with no gap). An agent sees every event of
 * the jobs it posted (bids arriving, the award, completion, settlement), the events that name it
 * (its bids, its award, race won or lost), and the outcome of the jobs it bid on.
 */
@Injectable()
export class JobEventFeed implements OnModuleDestroy {
  private readonly subscriptions = new Set<EventSubscription>();
  private readonly perAgent = new Map<string, number>();
  private readonly posters = new Map<string, string | null>();
  private manager?: Promise<JetStreamManager>;
  private readonly streamName: string;
  private readonly subjectFilter: string;

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext<GatewayConfig>,
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
  ) {
    this.streamName = context.prefix.streamName(eventStreams.market.name);
    this.subjectFilter = context.prefix.subject(eventStreams.market.subjects);
  }

  async subscribe(agentId: string, lastEventId: number | undefined): Promise<EventSubscription> {
    this.reserve(agentId);
    try {
      this.manager ??= jetstreamManager(this.context.nats);
      const { state } = await (await this.manager).streams.info(this.streamName);
      const fromSequence =
        lastEventId === undefined ? state.last_seq + 1 : Math.min(lastEventId + 1, state.last_seq + 1);
      const consumer = await jetstream(this.context.nats).consumers.get(this.streamName, {
        filter_subjects: this.subjectFilter,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: fromSequence,
      });
      const messages = await consumer.consume({ max_messages: PULL_BATCH_MESSAGES });
      const subscription = this.subscription(agentId, fromSequence, messages);
      this.subscriptions.add(subscription);
      return subscription;
    } catch (error) {
      this.manager = undefined;
      this.unreserve(agentId);
      if (error instanceof DomainError) throw error;
      throw new DomainError(
        ErrorCode.serviceUnavailable,
        'the job event stream is unavailable; retry shortly',
      );
    }
  }

  onModuleDestroy(): void {
    for (const subscription of [...this.subscriptions]) subscription.close();
  }

  private reserve(agentId: string): void {
    const { EVENT_STREAMS_MAX, EVENT_STREAMS_PER_AGENT_MAX } = this.context.config;
    if (this.subscriptions.size >= EVENT_STREAMS_MAX)
      throw new DomainError(
        ErrorCode.rateLimited,
        'too many open event streams on this server; retry shortly',
      );
    const open = this.perAgent.get(agentId) ?? 0;
    if (open >= EVENT_STREAMS_PER_AGENT_MAX)
      throw new DomainError(
        ErrorCode.rateLimited,
        `at most ${EVENT_STREAMS_PER_AGENT_MAX} open job event streams per agent`,
      );
    this.perAgent.set(agentId, open + 1);
  }

  private unreserve(agentId: string): void {
    const open = (this.perAgent.get(agentId) ?? 1) - 1;
    if (open <= 0) this.perAgent.delete(agentId);
    else this.perAgent.set(agentId, open);
  }

  private subscription(agentId: string, fromSequence: number, messages: ConsumerMessages): EventSubscription {
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      messages.stop();
      this.subscriptions.delete(subscription);
      this.unreserve(agentId);
    };
    const subscription: EventSubscription = {
      agentId,
      fromSequence,
      close,
      pump: async (sink: EventSink) => {
        try {
          for await (const message of messages) {
            const envelope = decodeJson<EventEnvelope>(message.data);
            if (await this.isVisibleTo(agentId, envelope))
              await sink.send(message.info.streamSequence, envelope);
          }
        } finally {
          close();
        }
      },
    };
    return subscription;
  }

  private async isVisibleTo(agentId: string, envelope: EventEnvelope): Promise<boolean> {
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
