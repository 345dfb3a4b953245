import type { EventMetadata } from '@pf/contracts';

/** An event to append. The id is chosen by the caller so that a retried append is a no-op. */
export interface NewEvent<Data extends object = Record<string, unknown>> {
  eventId: string;
  /** A single NATS subject token (`funded`, `transfer_posted`): it ends the event's subject. */
  type: string;
  /** JSON; bigints are stored as decimal strings and come back as strings. */
  data: Data;
  metadata?: EventMetadata;
}

/** An event as stored in the log. */
export interface RecordedEvent<Data extends object = Record<string, unknown>> {
  globalPosition: number;
  /** The writing transaction's id (xid8, as a decimal string): readers order by it, see readAll. */
  transactionId: string;
  streamId: string;
  streamVersion: number;
  eventId: string;
  type: string;
  data: Data;
  metadata: EventMetadata;
  recordedAt: Date;
}

/**
 * An event appended earlier in the current transaction, before its answer was read (pipelined
 * writers): its position and time are in the log, to be looked up there by event id.
 */
export type PendingEvent<Data extends object = Record<string, unknown>> = Pick<
  RecordedEvent<Data>,
  'streamId' | 'eventId' | 'type' | 'data' | 'metadata'
>;

/**
 * A reader's place in the log. Readers follow (transactionId, globalPosition), not the position
 * alone: only that order is final once every older transaction has ended (readAll explains).
 */
export interface LogPosition {
  transactionId: string;
  globalPosition: number;
}

export const LOG_START: LogPosition = Object.freeze({ transactionId: '0', globalPosition: 0 });

export function logPositionOf(event: Pick<RecordedEvent, 'transactionId' | 'globalPosition'>): LogPosition {
  return { transactionId: event.transactionId, globalPosition: event.globalPosition };
}

/** A number: the stream must be exactly at that version (0: must not exist). `any`: no check. */
export type ExpectedVersion = number | 'any';

export interface AppendResult {
  /** The appended events, or the originals when every event id was already in the log. */
  events: RecordedEvent[];
  /** The stream's version after the append: the expected version for the next one. */
  streamVersion: number;
  /** True when nothing was written because the same event ids were appended before. */
  idempotentReplay: boolean;
}
