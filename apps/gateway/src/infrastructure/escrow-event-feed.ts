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
  escrowCommands,
  eventStreams,
  type EscrowView,
  type EventEnvelope,
} from '@pf/contracts';
import { COMMAND_CLIENT, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { decodeJson, type CommandClient } from '@pf/messaging';
import type { GatewayConfig } from '../config.js';

/**
 * Event types an agent never sees on its stream: `opened` is the instant before the casino hold
 * (the escrow exists for the API only once `funded`), and `rejected` means the hold was refused,
 * so for the API the escrow never existed (the create answered 402).
 */
const INTERNAL_EVENT_TYPES = new Set(['opened', 'rejected']);
/** Escrows whose parties are remembered; parties never change, so entries never go stale. */
const PARTIES_CACHE_MAX_ENTRIES = 50_000;
/** Messages the ordered consumer pulls ahead per connection. */
const PULL_BATCH_MESSAGES = 64;

interface Parties {
  creatorId: string;
  counterpartyId: string;
}

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
 * `GET /escrow/events/stream` behind the HTTP layer. Escrow events are on JetStream
 * (`ESCROW_EVENTS`, subjects `escrow.events.<type>`); each connection reads them through its own
 * ephemeral ordered consumer from a stream sequence, which is also the SSE `id:`, so
 * `Last-Event-ID: n` resumes at n + 1 with no gap and no duplicate. The gateway keeps only the
 * events on escrows where the agent is creator or counterparty: the parties come from the
 * escrow's `opened` event, or, for an escrow first met mid-stream, from the escrow service
 * (asked once per escrow, then cached). Every connection reads every escrow event, so the
 * number of connections is bounded, per agent and per replica.
 */
@Injectable()
export class EscrowEventFeed implements OnModuleDestroy {
  private readonly subscriptions = new Set<EventSubscription>();
  private readonly perAgent = new Map<string, number>();
  private readonly parties = new Map<string, Parties | null>();
  private readonly lookups = new Map<string, Promise<Parties | null>>();
  private manager?: Promise<JetStreamManager>;
  private readonly streamName: string;
  private readonly subjectFilter: string;

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext<GatewayConfig>,
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
  ) {
    this.streamName = context.prefix.streamName(eventStreams.escrow.name);
    this.subjectFilter = context.prefix.subject(eventStreams.escrow.subjects);
  }

  get openCount(): number {
    return this.subscriptions.size;
  }

  /**
   * Opens a feed for the agent from the event after `lastEventId` (or from now). Throws 429 past
   * the limits and 503 when JetStream does not answer: before any byte of the stream is sent.
   */
  async subscribe(agentId: string, lastEventId: number | undefined): Promise<EventSubscription> {
    this.reserve(agentId);
    try {
      const fromSequence = await this.startSequence(lastEventId);
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
      this.unreserve(agentId);
      if (error instanceof DomainError) throw error;
      throw new DomainError(ErrorCode.serviceUnavailable, 'the event stream is unavailable; retry shortly');
    }
  }

  onModuleDestroy(): void {
    for (const subscription of [...this.subscriptions]) subscription.close();
  }

  private reserve(agentId: string): void {
    const { EVENT_STREAMS_MAX, EVENT_STREAMS_PER_AGENT_MAX } = this.context.config;
    if (this.subscriptions.size >= EVENT_STREAMS_MAX) {
      throw new DomainError(
        ErrorCode.rateLimited,
        'too many open event streams on this server; retry shortly',
      );
    }
    const open = this.perAgent.get(agentId) ?? 0;
    if (open >= EVENT_STREAMS_PER_AGENT_MAX) {
      throw new DomainError(
        ErrorCode.rateLimited,
        `at most ${EVENT_STREAMS_PER_AGENT_MAX} open event streams per agent`,
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
  private async startSequence(lastEventId: number | undefined): Promise<number> {
    this.manager ??= jetstreamManager(this.context.nats);
    const manager = await this.manager.catch((error: unknown) => {
      this.manager = undefined;
      throw error;
    });
    const { state } = await manager.streams.info(this.streamName);
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

  private async isVisibleTo(agentId: string, envelope: EventEnvelope): Promise<boolean> {
    const escrowId = escrowIdOf(envelope);
    const opened = envelope.type === 'opened' ? partiesOf(envelope.data) : null;
    if (opened) this.remember(escrowId, opened);
    if (INTERNAL_EVENT_TYPES.has(envelope.type)) return false;
    const parties = await this.partiesOf(escrowId);
    return parties !== null && (parties.creatorId === agentId || parties.counterpartyId === agentId);
  }

  /**
   * The escrow's parties, from the cache or asked once of the escrow service. A failed lookup
   * throws: the stream ends and the client resumes from its last id, so no event is skipped.
   */
  private partiesOf(escrowId: string): Promise<Parties | null> {
    const cached = this.parties.get(escrowId);
    if (cached !== undefined) return Promise.resolve(cached);
    let lookup = this.lookups.get(escrowId);
    if (!lookup) {
      lookup = this.lookUp(escrowId).finally(() => this.lookups.delete(escrowId));
      this.lookups.set(escrowId, lookup);
    }
    return lookup;
  }

  private async lookUp(escrowId: string): Promise<Parties | null> {
    try {
      const escrow = await this.commands.request<EscrowView>(
        escrowCommands.get,
        { escrowId },
        this.context.config.COMMAND_TIMEOUT_MS,
      );
      return this.remember(escrowId, { creatorId: escrow.creatorId, counterpartyId: escrow.counterpartyId });
    } catch (error) {
      // An escrow the service does not show (never funded) has no audience.
      if (error instanceof DomainError && error.code === ErrorCode.notFound)
        return this.remember(escrowId, null);
      throw error;
    }
  }

  private remember(escrowId: string, parties: Parties | null): Parties | null {
    if (this.parties.size >= PARTIES_CACHE_MAX_ENTRIES && !this.parties.has(escrowId)) {
      this.parties.delete(this.parties.keys().next().value!);
    }
    this.parties.set(escrowId, parties);
    return parties;
  }
}

/** Every escrow event names its escrow in `data.escrowId`; the stream id is `escrow-<id>`. */
function escrowIdOf(envelope: EventEnvelope): string {
  const { escrowId } = envelope.data;
  return typeof escrowId === 'string' ? escrowId : envelope.stream.replace(/^escrow-/, '');
}

function partiesOf(data: Record<string, unknown>): Parties | null {
  const { creatorId, counterpartyId } = data;
  return typeof creatorId === 'string' && typeof counterpartyId === 'string'
    ? { creatorId, counterpartyId }
    : null;
}
