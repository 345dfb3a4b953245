import { createHash, randomUUID } from 'node:crypto';
import { DomainError, type EventMetadata } from '@pf/contracts';
import { fold, type Decider } from './decider.js';
import { EventStoreErrorCode, VersionConflictError } from './errors.js';
import type { EventStore } from './event-store.js';
import type { NewEvent, RecordedEvent } from './types.js';

/** The usual shape of a domain event: a type and a JSON payload. */
export interface DomainEvent {
  type: string;
  data: Record<string, unknown>;
}

/** Maps domain events to stored ones and back (e.g. bigint amounts to strings and back). */
export interface EventCodec<Event> {
  encode(event: Event): { type: string; data: Record<string, unknown> };
  decode(recorded: RecordedEvent): Event;
}

export const domainEventCodec: EventCodec<DomainEvent> = {
  encode: (event) => ({ type: event.type, data: event.data }),
  decode: (recorded) => ({ type: recorded.type, data: recorded.data }),
};

export interface HandleCommandOptions<Event> {
  /** Version conflicts retried at most this many times (then the conflict is thrown). */
  maxRetries: number;
  codec?: EventCodec<Event>;
  /**
   * The command's caller-chosen id. Event ids then derive from it, so a retry of a command
   * whose append committed (but whose reply was lost) is an idempotent replay, not a repeat.
   */
  commandId?: string;
  metadata?: EventMetadata;
  /** Refuse to fold streams longer than this (default 10,000 events). */
  maxStreamEvents?: number;
}

export interface HandledCommand<State> {
  state: State;
  streamVersion: number;
  events: RecordedEvent[];
  /** 1 when no conflict happened. */
  attempts: number;
  idempotentReplay: boolean;
}

/**
 * Load, fold, decide, append with the expected version; on a version conflict reload and
 * decide again, at most `maxRetries` times. Domain errors from `decide` pass through.
 */
export async function handleCommand<Command, Event, State>(
  store: EventStore,
  decider: Decider<Command, Event, State>,
  streamId: string,
  command: Command,
  options: HandleCommandOptions<Event>,
): Promise<HandledCommand<State>> {
  const codec = options.codec ?? (domainEventCodec as unknown as EventCodec<Event>);
  const maxRetries = Math.min(Math.max(options.maxRetries, 0), 100);
  for (let attempt = 1; ; attempt += 1) {
    const history = await loadStream(store, streamId, options.maxStreamEvents ?? 10_000);
    const state = fold(
      decider,
      history.map((recorded) => codec.decode(recorded)),
    );
    const earlier = options.commandId
      ? history.filter((event) => event.metadata.commandId === options.commandId)
      : [];
    if (earlier.length > 0) {
      // The command ran before (its reply was lost): answer with what it did then.
      return {
        state,
        streamVersion: history.length,
        events: earlier,
        attempts: attempt,
        idempotentReplay: true,
      };
    }
    const decided = decider.decide(command, state);
    if (decided.length === 0) {
      return { state, streamVersion: history.length, events: [], attempts: attempt, idempotentReplay: false };
    }
    try {
      const result = await store.append(
        streamId,
        history.length,
        toNewEvents(decided, codec, streamId, options),
      );
      const after = decided.reduce((current, event) => decider.evolve(current, event), state);
      return {
        state: after,
        streamVersion: result.streamVersion,
        events: result.events,
        attempts: attempt,
        idempotentReplay: result.idempotentReplay,
      };
    } catch (error) {
      if (!(error instanceof VersionConflictError) || attempt > maxRetries) throw error;
      await backoff(attempt);
    }
  }
}

async function loadStream(store: EventStore, streamId: string, maxEvents: number): Promise<RecordedEvent[]> {
  const events = await store.readStream(streamId, { maxCount: Math.min(maxEvents + 1, 10_000) });
  if (events.length > maxEvents) {
    throw new DomainError(
      EventStoreErrorCode.streamTooLong,
      `stream ${streamId} has more than ${maxEvents} events`,
      { streamId },
    );
  }
  return events;
}

function toNewEvents<Event>(
  decided: readonly Event[],
  codec: EventCodec<Event>,
  streamId: string,
  options: HandleCommandOptions<Event>,
): NewEvent[] {
  const metadata = options.commandId
    ? { ...options.metadata, commandId: options.commandId }
    : options.metadata;
  return decided.map((event, index) => ({
    ...codec.encode(event),
    eventId: options.commandId ? nameBasedUuid(`${options.commandId}/${streamId}/${index}`) : randomUUID(),
    ...(metadata ? { metadata } : {}),
  }));
}

/** A UUID (version 5 layout) derived from a name: the same name always gives the same id. */
export function nameBasedUuid(name: string): string {
  const bytes = createHash('sha1').update('pf-event-id:').update(name).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Short jittered pause so that racing writers do not collide again in lockstep. */
function backoff(attempt: number): Promise<void> {
  const delayMs = Math.random() * Math.min(2 * attempt, 20);
  return new Promise((resolve) => setTimeout(resolve, delayMs));
}
