import type { EventMetadata } from '@pf/contracts';
import { eventColumns, type RecordedEvent } from '@pf/event-store';
import pg from 'pg';
import type { QueryRunner } from 'typeorm';
import { qualify } from './sql.js';

const TIMESTAMPTZ_OID = 1184;

/** A row of the log as read for a replay, in column order (pg's array row mode). */
type EventRow = [
  string,
  string,
  string,
  number,
  string,
  string,
  Record<string, unknown>,
  EventMetadata,
  Date,
];

/**
 * Reads a service's log in global-position order, a batch at a time, straight through the
 * pg connection: rows come back as arrays (no per-row object with named keys), and the
 * timestamps of consecutive events recorded in one transaction (they share it) are parsed once.
 */
export class LogReader {
  private readonly sql: { bounded: string; open: string };

  constructor(
    schema: string,
    private readonly batchSize: number,
  ) {
    const events = qualify(schema, 'events');
    // The store's own column list, in its order (the array rows below depend on it).
    const columns = eventColumns('e');
    // ORDER BY the table's column: the output column of the same name is text and sorts as text.
    this.sql = {
      bounded: `SELECT ${columns} FROM ${events} AS e
        WHERE e.global_position > $1::bigint AND e.global_position <= $2::bigint ORDER BY e.global_position LIMIT $3`,
      open: `SELECT ${columns} FROM ${events} AS e WHERE e.global_position > $1::bigint ORDER BY e.global_position LIMIT $2`,
    };
  }

  /** The events after `afterPosition` (up to `goalPosition` if given), at most one batch, on the runner's connection. */
  async read(
    runner: QueryRunner,
    afterPosition: number,
    goalPosition: number | null,
  ): Promise<RecordedEvent[]> {
    const client = (await runner.connect()) as pg.ClientBase;
    const types = new TimestampCache();
    const result = await client.query<EventRow>({
      text: goalPosition === null ? this.sql.open : this.sql.bounded,
      values:
        goalPosition === null
          ? [afterPosition, this.batchSize]
          : [afterPosition, goalPosition, this.batchSize],
      rowMode: 'array',
      types,
    });
    return result.rows.map(toRecordedEvent);
  }
}

/** pg's type parsers, except that a timestamptz equal to the previous one returns the same Date (read-only by convention, as all of a RecordedEvent). */
class TimestampCache {
  private lastText: string | undefined;
  private lastDate: Date | undefined;

  getTypeParser = (oid: number, format?: 'text' | 'binary'): ((text: string) => unknown) => {
    if (oid !== TIMESTAMPTZ_OID || format === 'binary')
      return pg.types.getTypeParser(oid, format ?? 'text') as (text: string) => unknown;
    const parse = pg.types.getTypeParser(TIMESTAMPTZ_OID, 'text') as (text: string) => Date;
    return (text: string) => {
      if (text !== this.lastText) {
        this.lastText = text;
        this.lastDate = parse(text);
      }
      return this.lastDate;
    };
  };
}

function toRecordedEvent(row: EventRow): RecordedEvent {
  const globalPosition = Number(row[0]);
  if (!Number.isSafeInteger(globalPosition))
    throw new Error(`global position ${row[0]} exceeds the safe integer range`);
  return {
    globalPosition,
    transactionId: row[1],
    streamId: row[2],
    streamVersion: row[3],
    eventId: row[4],
    type: row[5],
    data: row[6],
    metadata: row[7],
    recordedAt: row[8],
  };
}
