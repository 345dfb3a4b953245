import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { casinoCommands, casinoErrors, DomainError, ErrorCode } from '@pf/contracts';
import type { EventStore } from '@pf/event-store';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import {
  fromSettlementKey,
  settlementKey,
  type SettlementOrder,
} from '../infrastructure/escrow-repository.js';
import { ESCROW_EVENT_STORE } from './tokens.js';

const CASINO_TIMEOUT_MS = 5_000;
/** Confirmed settlements are deleted in batches: one statement per flush, not per escrow. */
const DELETE_FLUSH_MS = 50;
const MAX_DELETE_BATCH = 1_000;
/** Retries of a failing settlement back off up to this (casino down for long, or a bug). */
const MAX_RETRY_DELAY_MS = 60_000;

interface SettlementRow {
  escrow_id: string;
  kind: 'post' | 'void';
  splits: SettlementOrder['splits'];
  attempts: number;
}

/**
 * Carries out the casino side of escrow decisions from the settlement outbox: a post (release,
 * split) or a void (refund, decline) of the hold whose id is the escrow id. Casino answers a
 * repeated post or void with its first outcome, so sending an order twice (a crash before the
 * row was deleted, two replicas sweeping) moves the money once.
 */
@Injectable()
export class SettlementService implements OnApplicationShutdown {
  private readonly confirmed = new Set<string>();
  private flushTimer?: NodeJS.Timeout;
  private flushing?: Promise<void>;

  constructor(
    @Inject(ESCROW_EVENT_STORE) private readonly store: EventStore,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
  ) {}

  /** Sends the order to casino; throws what casino (or its absence) answered. */
  async carryOut(order: SettlementOrder): Promise<void> {
    try {
      await this.send(order);
    } catch (error) {
      // Voiding a hold that was never placed leaves nothing locked: done.
      const neverHeld =
        order.kind === 'void' && error instanceof DomainError && error.code === casinoErrors.holdNotFound;
      if (!neverHeld) throw error;
    }
    this.markConfirmed(settlementKey(order));
  }

  /** One pass over due outbox rows; returns how many were settled. */
  async retryDue(limit: number, concurrency: number): Promise<number> {
    const rows: SettlementRow[] = await this.store.dataSource.query(
      `SELECT escrow_id, kind, splits, attempts FROM ${this.store.schema}.settlements
       WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1`,
      [limit],
    );
    let settled = 0;
    await forEachLimited(rows, concurrency, async (row) => {
      try {
        await this.carryOut(orderOf(row));
        settled += 1;
      } catch (error) {
        await this.recordFailure(row, error);
      }
    });
    return settled;
  }

  /** The escrow's settlements casino has not confirmed yet (its whole hold, or milestone parts). */
  async pendingFor(escrowId: string): Promise<SettlementOrder[]> {
    const rows: SettlementRow[] = await this.store.dataSource.query(
      `SELECT escrow_id, kind, splits, attempts FROM ${this.store.schema}.settlements
       WHERE escrow_id = $1 OR (escrow_id LIKE $1 || ':%') ORDER BY escrow_id LIMIT 100`,
      [escrowId],
    );
    return rows.map(orderOf);
  }

  async pendingCount(): Promise<number> {
    const rows: Array<{ n: number }> = await this.store.dataSource.query(
      `SELECT count(*)::int AS n FROM ${this.store.schema}.settlements`,
    );
    return rows[0]!.n;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.flush();
  }

  /** Deletes the confirmed rows now (also called on shutdown). */
  async flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await this.flushing;
    if (this.confirmed.size === 0) return;
    const batch = [...this.confirmed].slice(0, MAX_DELETE_BATCH);
    for (const id of batch) this.confirmed.delete(id);
    this.flushing = this.store.dataSource
      .query(`DELETE FROM ${this.store.schema}.settlements WHERE escrow_id = ANY($1::text[])`, [batch])
      .then(
        () => undefined,
        // The rows stay; the retry sweep re-sends them and casino answers with the first outcome.
        (error: Error) =>
          this.context.logger.warn({ err: error.message }, 'could not delete confirmed settlements'),
      );
    await this.flushing;
    if (this.confirmed.size > 0) this.scheduleFlush();
  }

  private send(order: SettlementOrder): Promise<unknown> {
    const commands = this.context.commands;
    if (order.kind === 'void')
      return commands.request(
        casinoCommands.void,
        { holdId: order.escrowId, service: 'escrow' },
        CASINO_TIMEOUT_MS,
      );
    return commands.request(
      casinoCommands.post,
      {
        holdId: order.escrowId,
        splits: order.splits,
        ...(order.partId ? { partId: order.partId } : {}),
        service: 'escrow',
      },
      CASINO_TIMEOUT_MS,
    );
  }

  private markConfirmed(escrowId: string): void {
    this.confirmed.add(escrowId);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => void this.flush(), DELETE_FLUSH_MS);
  }

  private async recordFailure(row: SettlementRow, error: unknown): Promise<void> {
    const code = error instanceof DomainError ? error.code : ErrorCode.internalError;
    const message = error instanceof Error ? error.message : String(error);
    // Casino away is expected and retried quietly; anything else is a bug worth an error log.
    if (code !== ErrorCode.serviceUnavailable) {
      this.context.logger.error(
        { escrowId: row.escrow_id, kind: row.kind, code, err: message },
        'settlement refused by casino',
      );
    }
    const delayMs = Math.min(1_000 * 2 ** Math.min(row.attempts, 16), MAX_RETRY_DELAY_MS);
    await this.store.dataSource
      .query(
        `UPDATE ${this.store.schema}.settlements SET attempts = attempts + 1, last_error = $2,
           next_attempt_at = now() + $3 * interval '1 millisecond' WHERE escrow_id = $1`,
        [row.escrow_id, `${code}: ${message}`.slice(0, 500), delayMs],
      )
      .catch(() => undefined);
  }
}

function orderOf(row: SettlementRow): SettlementOrder {
  return { ...fromSettlementKey(row.escrow_id), kind: row.kind, splits: row.splits };
}

/** Runs `work` over `items` with at most `limit` at once. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next]!;
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
