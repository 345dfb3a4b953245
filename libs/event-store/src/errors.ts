import { DomainError, ErrorCode } from '@pf/contracts';

/** Codes of the failures the event store reports as values. */
export const EventStoreErrorCode = {
  /** A caller bug: one event id reused with different content or another stream. */
  eventIdReused: 'event_id_reused',
  /** A stream longer than the reader's limit: the aggregate needs a snapshot or a split. */
  streamTooLong: 'stream_too_long',
} as const;

export type VersionConflictReason = 'version_mismatch' | 'concurrent_append' | 'transaction_order';

/**
 * Another writer got to the stream first (or, rarely, this transaction is older than the
 * stream's last writer, see `transaction_order` in event-store.ts). Never a lost update: the
 * caller reloads the stream and decides again, in a new transaction.
 */
export class VersionConflictError extends DomainError {
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number | 'any',
    readonly actualVersion: number | null,
    readonly reason: VersionConflictReason,
  ) {
    super(
      ErrorCode.versionConflict,
      `stream ${streamId} changed concurrently (expected version ${expectedVersion}, found ${actualVersion ?? 'unknown'}: ${reason}); reload and retry`,
      { streamId, expectedVersion, actualVersion, reason },
    );
    this.name = 'VersionConflictError';
  }
}

export function isVersionConflict(error: unknown): error is VersionConflictError {
  return error instanceof VersionConflictError;
}
