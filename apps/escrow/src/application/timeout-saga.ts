import { Inject, Injectable } from '@nestjs/common';
import { prepared, type EventStore } from '@pf/event-store';
import { CONFIG, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { sweepWorkers, type EscrowConfig } from '../config.js';
import type { EscrowEvent } from '../domain/escrow.js';
import type { EscrowRepository, SettlementOrder } from '../infrastructure/escrow-repository.js';
import { EscrowCommands } from './escrow-commands.js';
import { ESCROW_ROW_COLUMNS, type EscrowRow } from '../infrastructure/escrow-row.js';
import { EscrowService } from './escrow.service.js';
import { forEachLimited, SettlementService } from './settlement.service.js';
import { ESCROW_EVENT_STORE, ESCROW_REPOSITORY } from './tokens.js';
import { logEscrowFacts } from './escrow-facts.js';

/** Stuck holds finished per pass. */
const RECOVERY_BATCH_SIZE = 100;
/** Settlements of one pass sent right after it; beyond this they wait for the retry pass. */
const MAX_INLINE_SETTLEMENTS = 20_000;
/** Outbox rows retried per pass. */
const SETTLEMENT_BATCH_SIZE = 500;
/** Log a failing pass the first time and then every this many passes (Postgres down for a while). */
const FAILURE_LOG_EVERY = 30;

interface Claim {
  ids: string[];
}

export interface SweepStats {
  passes: number;
  expired: number;
  recovered: number;
  settled: number;
  failedPasses: number;
}

/**
 * The escrow's background work, every ESCROW_SWEEP_INTERVAL_MS (and at start):
 * 1. Deadlines (the timeout saga): due rows (`due_at <= now()`, the database's clock) are claimed
 *    with FOR UPDATE SKIP LOCKED together with their escrow rows, so replicas and concurrent
 *    commands never process one twice; each becomes a `refunded` (funded) or `released`
 *    (completed) event in the same transaction that deletes the deadline. A crash rolls the
 *    batch back and the next pass redoes it: exactly once.
 * 2. Recovery of creates cut off between `opened` and the hold's outcome: the same hold is sent
 *    again (idempotent on the escrow id) and its outcome recorded.
 * 3. The settlement outbox: casino posts and voids not yet confirmed are sent again.
 */
@Injectable()
export class TimeoutSaga {
  readonly stats: SweepStats = { passes: 0, expired: 0, recovered: 0, settled: 0, failedPasses: 0 };
  private readonly claimSql: string;
  private running?: Promise<void>;
  private settling?: Promise<void>;
  private stopping = false;
  private wakeSleeper?: () => void;

  constructor(
    @Inject(ESCROW_REPOSITORY) private readonly repository: EscrowRepository,
    @Inject(ESCROW_EVENT_STORE) private readonly store: EventStore,
    @Inject(CONFIG) private readonly config: EscrowConfig,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    private readonly escrows: EscrowService,
    private readonly settlements: SettlementService,
    private readonly commands: EscrowCommands,
  ) {
    const schema = store.schema;
    this.claimSql = `
      SELECT ${ESCROW_ROW_COLUMNS} FROM ${schema}.deadlines d JOIN ${schema}.escrows e USING (escrow_id)
      WHERE d.due_at <= now() AND d.escrow_id <> ALL($2::text[]) ORDER BY d.due_at LIMIT $1
      FOR UPDATE OF d, e SKIP LOCKED`;
  }

  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.running = this.loop();
  }

  /** Lets the pass in progress finish (its transaction commits or rolls back) and stops. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeSleeper?.();
    await this.running;
    await this.settling;
    this.running = undefined;
  }

  /**
   * One full pass. Deadlines first, all of them; the casino side of what they decided is sent
   * afterwards in the background, so a burst of deadlines is recorded as fast as Postgres allows
   * and its refunds follow (the outbox has them either way).
   */
  async sweepOnce(): Promise<void> {
    const orders = await this.expireDue();
    this.settleInBackground(orders);
    await this.recoverOpened();
    // While a background settlement runs, its rows would only be sent twice.
    if (!this.settling)
      this.stats.settled += await this.settlements.retryDue(
        SETTLEMENT_BATCH_SIZE,
        this.config.ESCROW_SETTLE_CONCURRENCY,
      );
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.sweepOnce();
        this.stats.passes += 1;
      } catch (error) {
        this.stats.failedPasses += 1;
        if (this.stats.failedPasses % FAILURE_LOG_EVERY === 1) {
          this.context.logger.warn(
            { err: (error as Error).message, failedPasses: this.stats.failedPasses },
            'escrow sweep failed; retrying',
          );
        }
      }
      await this.sleep(this.config.ESCROW_SWEEP_INTERVAL_MS);
    }
  }

  /**
   * Workers claim batches side by side until no due deadline is left unclaimed. A batch that
   * fails (one bad escrow rolls back its whole transaction) is redone one escrow at a time, so
   * a single failing escrow is logged and skipped for this pass instead of holding up the rest.
   * Returns the settlements the expired escrows owe (at most MAX_INLINE_SETTLEMENTS; the rest
   * wait in the outbox for the retry pass).
   */
  private async expireDue(): Promise<SettlementOrder[]> {
    const failed = new Set<string>();
    const owed: SettlementOrder[] = [];
    const workers = Array.from({ length: sweepWorkers(this.config) }, async () => {
      let batchSize = this.config.ESCROW_SWEEP_BATCH_SIZE;
      while (!this.stopping) {
        const claim: Claim = { ids: [] };
        let orders: SettlementOrder[];
        try {
          orders = await this.expireBatch(batchSize, [...failed], claim);
        } catch (error) {
          if (batchSize === 1) {
            for (const id of claim.ids) failed.add(id);
            this.context.logger.error(
              { escrowIds: claim.ids, err: (error as Error).message },
              'could not expire an escrow; skipped this pass',
            );
          }
          if (claim.ids.length === 0) throw error;
          batchSize = 1;
          continue;
        }
        this.stats.expired += claim.ids.length;
        if (owed.length < MAX_INLINE_SETTLEMENTS) owed.push(...orders);
        if (
          claim.ids.length === 0 ||
          (claim.ids.length < batchSize && batchSize === this.config.ESCROW_SWEEP_BATCH_SIZE)
        )
          break;
      }
    });
    await Promise.all(workers);
    return owed;
  }

  /**
   * One transaction: claim due deadlines with their escrow rows (SKIP LOCKED), append each
   * escrow's `refunded` or `released` (the projection deletes the deadline), and write all the
   * settlements the batch owes in one statement.
   */
  private async expireBatch(limit: number, excluded: string[], claim: Claim): Promise<SettlementOrder[]> {
    const facts: EscrowEvent[] = [];
    const orders = await this.store.transaction(async (runner) => {
      facts.length = 0; // a retried transaction starts over
      const rows: EscrowRow[] = await runner.query(prepared(this.claimSql), [limit, excluded]);
      claim.ids = rows.map((row) => row.escrow_id);
      const orders: SettlementOrder[] = [];
      for (const row of rows) {
        const decision = await this.commands.decideIn(runner, row, { kind: 'expire' }, (order) =>
          orders.push(order),
        );
        if (decision.events.length === 0)
          this.context.logger.error(
            { escrowId: row.escrow_id, status: row.status },
            'a deadline on an escrow that cannot time out',
          );
        facts.push(...decision.events);
      }
      await this.repository.writeSettlements(runner, orders);
      return orders;
    });
    // Deadlines fired: logged once committed, as `escrow refunded trigger=timeout` / `escrow released`.
    logEscrowFacts(this.context.logger, facts);
    return orders;
  }

  /** Casino calls for decisions just committed; one background run at a time, failures stay in the outbox. */
  private settleInBackground(orders: readonly SettlementOrder[]): void {
    if (orders.length === 0 || this.settling) return;
    this.settling = forEachLimited(orders, this.config.ESCROW_SETTLE_CONCURRENCY, async (order) => {
      await this.settlements.carryOut(order).catch(() => undefined);
    }).finally(() => {
      this.settling = undefined;
    });
  }

  private async recoverOpened(): Promise<void> {
    // The sub-key (if any) is read from the escrow's `opened` event: recovery is rare, and the
    // hold must carry it so casino still decides the mandate (ADR 0019).
    const rows: Array<{
      escrow_id: string;
      creator_id: string;
      counterparty_id: string;
      amount_micros: string;
      key_id: string | null;
    }> = await this.store.dataSource.query(
      `SELECT r.escrow_id, r.creator_id, r.counterparty_id, r.amount_micros,
         (SELECT e.data->>'keyId' FROM ${this.store.schema}.events AS e
          WHERE e.stream_id = 'escrow-' || r.escrow_id AND e.type = 'opened' LIMIT 1) AS key_id
       FROM ${this.store.schema}.escrows AS r
       WHERE r.status = 'opened' AND r.created_at < now() - $1 * interval '1 millisecond'
       ORDER BY r.created_at LIMIT $2`,
      [this.config.ESCROW_RECOVERY_AFTER_MS, RECOVERY_BATCH_SIZE],
    );
    await forEachLimited(rows, this.config.ESCROW_SETTLE_CONCURRENCY, async (row) => {
      const outcome = await this.escrows.placeHold(row.escrow_id, row.creator_id, BigInt(row.amount_micros), {
        keyId: row.key_id,
        counterpartyId: row.counterparty_id,
      });
      if (!outcome) return;
      await this.escrows.recordHold(row.escrow_id, outcome);
      this.stats.recovered += 1;
      this.context.logger.info(
        { escrowId: row.escrow_id, outcome: outcome.outcome },
        'recovered an escrow cut off before its hold was recorded',
      );
    });
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleeper = done;
    });
  }
}
