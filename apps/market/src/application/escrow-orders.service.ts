import { Inject, Injectable } from '@nestjs/common';
import { DomainError, ErrorCode, escrowCommands, escrowErrors, type EscrowCancelReason } from '@pf/contracts';
import type { EventStore } from '@pf/event-store';
import { CONFIG, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { MarketConfig } from '../config.js';
import { MARKET_EVENT_STORE } from './tokens.js';

/** Retries of a failing order back off up to this (escrow down for long, or a bug). */
const MAX_RETRY_DELAY_MS = 60_000;
/** Orders sent per pass, and at once. */
const ORDER_BATCH_SIZE = 200;
const ORDER_CONCURRENCY = 16;
/** Wait this long after a decision before sending its orders, so its transaction has committed. */
const WAKE_DELAY_MS = 10;

interface OrderRow {
  escrow_id: string;
  kind: 'cancel' | 'release';
  job_id: string;
  reason: EscrowCancelReason | null;
  actor_id: string;
  attempts: number;
}

/**
 * Carries out the escrow commands job decisions owe (the `escrow_orders` outbox): cancel the
 * losers of a race and the escrows of a cancelled job, release a race's winner. Each command
 * carries an id derived from (escrow, kind), so escrow answers a repeat with its first outcome
 * and an order sent twice (a crash before the row was deleted, two replicas) acts once.
 */
@Injectable()
export class EscrowOrdersService {
  private wakeTimer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    @Inject(MARKET_EVENT_STORE) private readonly store: EventStore,
    @Inject(CONFIG) private readonly config: MarketConfig,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
  ) {}

  /** Sends the due orders soon (after a decision committed), without waiting for the sweep. */
  wakeSoon(): void {
    if (this.wakeTimer) return;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      void this.sendDue().catch(() => undefined);
    }, WAKE_DELAY_MS);
  }

  stop(): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
  }

  /** One pass over due orders (one pass at a time per process); returns how many were done. */
  async sendDue(): Promise<number> {
    if (this.running) return this.running;
    this.running = this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  async pendingCount(): Promise<number> {
    const rows: Array<{ n: number }> = await this.store.dataSource.query(
      `SELECT count(*)::int AS n FROM ${this.store.schema}.escrow_orders`,
    );
    return rows[0]!.n;
  }

  private async pass(): Promise<number> {
    const rows: OrderRow[] = await this.store.dataSource.query(
      `SELECT escrow_id, kind, job_id, reason, actor_id, attempts FROM ${this.store.schema}.escrow_orders
       WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1`,
      [ORDER_BATCH_SIZE],
    );
    let done = 0;
    let next = 0;
    const worker = async () => {
      while (next < rows.length) {
        const row = rows[next++]!;
        if (await this.carryOut(row)) done += 1;
      }
    };
    await Promise.all(Array.from({ length: Math.min(ORDER_CONCURRENCY, rows.length) }, worker));
    return done;
  }

  private async carryOut(row: OrderRow): Promise<boolean> {
    try {
      await this.send(row);
    } catch (error) {
      if (!isFinal(row, error)) {
        await this.recordFailure(row, error);
        return false;
      }
      // Nothing left to do: e.g. the worker completed before the job's cancel arrived (escrow pays them).
      this.context.logger.warn(
        { escrowId: row.escrow_id, kind: row.kind, err: (error as Error).message },
        'escrow order refused; dropped',
      );
    }
    await this.store.dataSource.query(
      `DELETE FROM ${this.store.schema}.escrow_orders WHERE escrow_id = $1 AND kind = $2`,
      [row.escrow_id, row.kind],
    );
    return true;
  }

  private send(row: OrderRow): Promise<unknown> {
    const commandId = `market-${row.kind}-${row.escrow_id}`;
    const timeoutMs = this.config.MARKET_ESCROW_TIMEOUT_MS;
    if (row.kind === 'cancel') {
      return this.context.commands.request(
        escrowCommands.cancel,
        { escrowId: row.escrow_id, jobId: row.job_id, reason: row.reason, commandId },
        timeoutMs,
      );
    }
    return this.context.commands.request(
      escrowCommands.release,
      { escrowId: row.escrow_id, actorId: row.actor_id, jobId: row.job_id, commandId },
      timeoutMs,
    );
  }

  private async recordFailure(row: OrderRow, error: unknown): Promise<void> {
    const code = error instanceof DomainError ? error.code : ErrorCode.internalError;
    const delayMs = Math.min(500 * 2 ** Math.min(row.attempts, 16), MAX_RETRY_DELAY_MS);
    await this.store.dataSource
      .query(
        `UPDATE ${this.store.schema}.escrow_orders SET attempts = attempts + 1, last_error = $3,
           next_attempt_at = now() + $4 * interval '1 millisecond' WHERE escrow_id = $1 AND kind = $2`,
        [row.escrow_id, row.kind, `${code}: ${(error as Error).message}`.slice(0, 500), delayMs],
      )
      .catch(() => undefined);
  }
}

/**
 * An answer no retry can change: the escrow is gone (its funding was refused), or in a state
 * the order cannot apply to any more. An escrow still `opened` (its hold in flight) is retried.
 */
function isFinal(row: OrderRow, error: unknown): boolean {
  if (!(error instanceof DomainError)) return false;
  if (error.code === ErrorCode.notFound) return row.kind === 'cancel';
  if (error.code === escrowErrors.invalidStatus) return error.details?.status !== 'opened';
  return error.code === ErrorCode.forbidden;
}
