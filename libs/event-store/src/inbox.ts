import type { QueryRunner } from 'typeorm';
import type { EventStore } from './event-store.js';
import { EVENT_STORE_TABLES } from './migrations.js';
import { prepared, qualify } from './sql.js';

export type InboxOutcome = 'processed' | 'duplicate';

/** Thrown inside the transaction to roll it back when the event was processed before. */
class AlreadyProcessed extends Error {}

/**
 * Consumer-side deduplication on event id, beyond the broker's duplicate window (minutes):
 * the inbox row and the handler's writes commit in one transaction, so an event redelivered
 * after a crash, a nak or a replay is recognised and skipped.
 */
export class PgInbox {
  private readonly insertSql: string;

  constructor(private readonly store: EventStore) {
    this.insertSql = `
      INSERT INTO ${qualify(store.schema, EVENT_STORE_TABLES.inbox)} (consumer, event_id) VALUES ($1, $2)
      ON CONFLICT (consumer, event_id) DO NOTHING
      RETURNING 1 AS inserted`;
  }

  /**
   * Runs `fn` once per (consumer, event id): one transaction inserts the inbox row and runs
   * `fn` on the same runner. A concurrent delivery of the same event waits on the row and
   * then sees the duplicate; if `fn` throws, everything rolls back and a redelivery retries.
   */
  async runOnce(
    consumer: string,
    eventId: string,
    fn: (runner: QueryRunner) => Promise<void>,
  ): Promise<InboxOutcome> {
    try {
      await this.store.transaction(async (runner) => {
        const inserted: unknown[] = await runner.query(prepared(this.insertSql), [consumer, eventId]);
        if (inserted.length === 0) throw new AlreadyProcessed();
        await fn(runner);
      });
      return 'processed';
    } catch (error) {
      if (error instanceof AlreadyProcessed) return 'duplicate';
      throw error;
    }
  }
}
