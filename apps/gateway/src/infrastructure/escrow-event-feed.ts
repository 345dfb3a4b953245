import { Inject, Injectable } from '@nestjs/common';
import {
  DomainError,
  ErrorCode,
  escrowCommands,
  eventStreams,
  type EscrowView,
  type EventEnvelope,
} from '@pf/contracts';
import { COMMAND_CLIENT, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import type { GatewayConfig } from '../config.js';
import { StreamEventFeed } from './stream-event-feed.js';

export type { EventSink, EventSubscription } from './stream-event-feed.js';

/**
 * Event types an agent never sees on its stream: `opened` is the instant before the casino hold
 * (the escrow exists for the API only once `funded`), and `rejected` means the hold was refused,
 * so for the API the escrow never existed (the create answered 402).
 */
const INTERNAL_EVENT_TYPES = new Set(['opened', 'rejected']);
/** Escrows whose parties are remembered; parties never change, so entries never go stale. */
const PARTIES_CACHE_MAX_ENTRIES = 50_000;

export interface Parties {
  creatorId: string;
  counterpartyId: string;
  /** docs/adr/0016: the evaluator judges the work, so it follows the escrow's events too. */
  evaluatorId: string | null;
}

/**
 * `GET /escrow/events/stream` behind the HTTP layer: the events of `ESCROW_EVENTS` on escrows
 * where the agent is creator or counterparty. The parties come from the escrow's `opened` event,
 * or, for an escrow first met mid-stream, from the escrow service (asked once per escrow, then
 * cached). Consumers, resumption and limits: StreamEventFeed.
 */
@Injectable()
export class EscrowEventFeed extends StreamEventFeed {
  private readonly parties = new Map<string, Parties | null>();
  private readonly lookups = new Map<string, Promise<Parties | null>>();

  constructor(
    @Inject(SERVICE_CONTEXT) context: ServiceContext<GatewayConfig>,
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
  ) {
    super(context, eventStreams.escrow, 'event stream');
  }

  async isVisibleTo(agentId: string, envelope: EventEnvelope): Promise<boolean> {
    const escrowId = escrowIdOf(envelope);
    this.observe(envelope);
    if (INTERNAL_EVENT_TYPES.has(envelope.type)) return false;
    const parties = await this.partiesOf(escrowId);
    return (
      parties !== null &&
      (parties.creatorId === agentId || parties.counterpartyId === agentId || parties.evaluatorId === agentId)
    );
  }

  /**
   * Remembers the parties an `opened` event names. Every reader of the escrow stream in this
   * process (the feeds, the receipt issuer) passes its events here, so a later event of the same
   * escrow finds its parties without asking the escrow service.
   */
  observe(envelope: EventEnvelope): void {
    if (envelope.type !== 'opened') return;
    const opened = partiesOf(envelope.data);
    if (opened) this.remember(escrowIdOf(envelope), opened);
  }

  /**
   * The escrow's parties, from the cache or asked once of the escrow service. A failed lookup
   * throws: the stream ends and the client resumes from its last id, so no event is skipped.
   */
  partiesOf(escrowId: string): Promise<Parties | null> {
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
      return this.remember(escrowId, {
        creatorId: escrow.creatorId,
        counterpartyId: escrow.counterpartyId,
        evaluatorId: escrow.evaluatorId ?? null,
      });
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
  const { creatorId, counterpartyId, evaluatorId } = data;
  return typeof creatorId === 'string' && typeof counterpartyId === 'string'
    ? { creatorId, counterpartyId, evaluatorId: typeof evaluatorId === 'string' ? evaluatorId : null }
    : null;
}
