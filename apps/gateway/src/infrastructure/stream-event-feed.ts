import type { OnModuleDestroy } from '@nestjs/common';
import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { DomainError, ErrorCode, type EventEnvelope } from '@pf/contracts';
import type { ServiceContext } from '@pf/platform';
import { decodeJson } from '@pf/messaging';
import type { GatewayConfig } from '../config.js';

/** Messages the ordered consumer pulls ahead per connection. */
const PULL_BATCH_MESSAGES = 64;

/**
 * What a connection writes to; `send` resolves when the client has taken the frame. It gets the
 * internal envelope: turning it into what clients read (the REST shape) is the HTTP layer's job.
 */
export interface EventSink {
  send(id: number, envelope: EventEnvelope): Promise<void>;
}

/** One agent's live feed: the ordered consumer behind it and its place in the limits. */
export interface EventSubscription {
  readonly agentId: string;
  readonly fromSequence: number;
  /** Pumps events to the sink until `close()` or a failure; then releases everything. */
  pump(sink: EventSink): Promise<void>;
  close(): void;
}

/**
 * An SSE feed of one JetStream stream for one agent at a time: each connection reads through its
 * own ephemeral ordered consumer from a stream sequence, which is also the SSE `id:`, so
 * `Last-Event-ID: n` resumes at n + 1 with no gap and no duplicate. Every connection reads every
 * event of the stream, so connections are bounded per agent and per replica. What a feed shows an
 * agent is its `isVisibleTo` (escrow parties, job posters and bidders).
 */
export abstract class StreamEventFeed implements OnModuleDestroy {
  private readonly subscriptions = new Set<EventSubscription>();
  private readonly perAgent = new Map<string, number>();
  private manager?: Promise<JetStreamManager>;

  protected constructor(
    protected readonly context: ServiceContext<GatewayConfig>,
    private readonly stream: { name: string; subjects: string },
    /** Names the feed in its refusals ("event stream", "job event stream"). */
    private readonly label: string,
  ) {}

  get openCount(): number {
    return this.subscriptions.size;
  }

  /** Whether the agent may see this event; a failure ends the stream (the client resumes). */
  abstract isVisibleTo(agentId: string, envelope: EventEnvelope): Promise<boolean>;

  /**
   * Opens a feed for the agent from the event after `lastEventId` (or from now). Throws 429 past
   * the limits and 503 when JetStream does not answer: before any byte of the stream is sent.
   */
  async subscribe(agentId: string, lastEventId: number | undefined): Promise<EventSubscription> {
    this.reserve(agentId);
    try {
      const streamName = this.context.prefix.streamName(this.stream.name);
      const fromSequence = await this.startSequence(streamName, lastEventId);
      const consumer = await jetstream(this.context.nats).consumers.get(streamName, {
        filter_subjects: this.context.prefix.subject(this.stream.subjects),
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: fromSequence,
      });
      const messages = await consumer.consume({ max_messages: PULL_BATCH_MESSAGES });
      const subscription = this.subscription(agentId, fromSequence, messages);
      this.subscriptions.add(subscription);
      return subscription;
    } catch (error) {
      this.unreserve(agentId);
      if (error instanceof DomainError) throw error;
      throw new DomainError(ErrorCode.serviceUnavailable, `the ${this.label} is unavailable; retry shortly`);
    }
  }

  onModuleDestroy(): void {
    for (const subscription of [...this.subscriptions]) subscription.close();
  }

  /**
   * Open connections one audience may hold: an agent here; the public feeds (whose audience is a
   * client IP) override it.
   */
  protected audienceLimit(): { max: number; noun: string } {
    return { max: this.context.config.EVENT_STREAMS_PER_AGENT_MAX, noun: 'agent' };
  }

  private reserve(agentId: string): void {
    const { EVENT_STREAMS_MAX } = this.context.config;
    if (this.subscriptions.size >= EVENT_STREAMS_MAX) {
      throw new DomainError(
        ErrorCode.rateLimited,
        'too many open event streams on this server; retry shortly',
      );
    }
    const limit = this.audienceLimit();
    const open = this.perAgent.get(agentId) ?? 0;
    if (open >= limit.max) {
      throw new DomainError(
        ErrorCode.rateLimited,
        `at most ${limit.max} open ${this.label}s per ${limit.noun}`,
      );
    }
    this.perAgent.set(agentId, open + 1);
  }

  private unreserve(agentId: string): void {
    const open = (this.perAgent.get(agentId) ?? 1) - 1;
    if (open <= 0) this.perAgent.delete(agentId);
    else this.perAgent.set(agentId, open);
  }

  /** After `lastEventId`, or the next event to be stored when the client has none. */
  private async startSequence(streamName: string, lastEventId: number | undefined): Promise<number> {
    this.manager ??= jetstreamManager(this.context.nats);
    const manager = await this.manager.catch((error: unknown) => {
      this.manager = undefined;
      throw error;
    });
    const { state } = await manager.streams.info(streamName);
    const next = state.last_seq + 1;
    // An id past the end cannot be one this stream gave (it was recreated): start at its end.
    return lastEventId === undefined ? next : Math.min(lastEventId + 1, next);
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
      pump: async (sink) => {
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
}
