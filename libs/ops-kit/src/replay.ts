import {
  dropProjectionTables,
  projectionTarget,
  type BulkLoad,
  type Projection,
  type ProjectionTarget,
  type RecordedEvent,
} from '@pf/event-store';
import type { DataSource, QueryRunner } from 'typeorm';
import { UsageError } from './args.js';
import { BulkLoadConnections } from './bulk-context.js';
import { LogReader } from './log-reader.js';
import type { ReplayBound } from './bounds.js';
import type { OpsPhase } from './protocol.js';
import { qualify, SQLSTATE_DEADLOCK_DETECTED, SQLSTATE_LOCK_NOT_AVAILABLE, sqlStateOf } from './sql.js';
import { compareTables, renameTableFamily, tableExists, type TableDifference } from './tables.js';

export const DEFAULT_REPLAY_BATCH_SIZE = 1_000;
export const MAX_REPLAY_BATCH_SIZE = 10_000;
/** Longest the swap waits for one table lock before giving up (and retrying). */
const SWAP_LOCK_TIMEOUT_MS = 5_000;
const SWAP_ATTEMPTS = 3;
const FINALITY_POLL_MS = 20;

export interface ReplayEngineOptions {
  dataSource: DataSource;
  /** The service's schema: its log is `<schema>.events`, its projections' tables live beside it. */
  schema: string;
  /** Inline projections (written in the append's transaction), in the order writers lock their tables. */
  projections: readonly Projection[];
  /** Events per read and per apply transaction; default 1,000, at most 10,000. */
  batchSize?: number;
  /** How long to wait for transactions that may still commit events below a goal; default 30 s. */
  finalityTimeoutMs?: number;
  onProgress?: (phase: OpsPhase, done: number, total: number) => void;
}

export interface ReplayOutcome {
  target: ProjectionTarget;
  events: number;
  goalPosition: number;
  durationMs: number;
}

/**
 * Rebuilds a service's inline projections from its log into fresh tables, in global-position
 * order, and swaps them in or compares them with the live ones.
 *
 * Why position order (and not the (transaction id, position) order of `readAll`): inline
 * projections were written live in the order the writers took their row locks, and a writer
 * that waited for another's lock appended after it committed, so it holds a higher position.
 * Position order therefore repeats, per account, the order the live tables saw (balances never
 * dip below zero mid-replay; running balances come out identical), while transaction ids are
 * taken at a transaction's first write and can invert two dependent commands.
 *
 * Positions are handed out at insert, not at commit, so before reading up to a goal the engine
 * waits until every transaction that could still commit a position below it has ended
 * (`waitForFinality`); from then on the events up to the goal are final.
 */
export class ReplayEngine {
  private readonly batchSize: number;
  private readonly events: string;
  private readonly reader: LogReader;

  constructor(private readonly options: ReplayEngineOptions) {
    const batchSize = options.batchSize ?? DEFAULT_REPLAY_BATCH_SIZE;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > MAX_REPLAY_BATCH_SIZE) {
      throw new UsageError(
        `batch size must be a whole number from 1 to ${MAX_REPLAY_BATCH_SIZE}, got ${batchSize}`,
      );
    }
    this.batchSize = batchSize;
    this.events = qualify(options.schema, 'events');
    this.reader = new LogReader(options.schema, batchSize);
  }

  target(suffix: string): ProjectionTarget {
    if (suffix === '') throw new UsageError('a replay never writes the live tables directly; use --swap');
    return projectionTarget(this.options.schema, suffix);
  }

  /** The last position a bound includes (0 for none), and waits until positions up to it are final. */
  async goalPosition(bound: ReplayBound): Promise<number> {
    const goal = await this.boundPosition(bound);
    await this.waitForFinality();
    return goal;
  }

  private async boundPosition(bound: ReplayBound): Promise<number> {
    const head = await this.scalar(
      `SELECT coalesce(max(global_position), 0)::text AS value FROM ${this.events}`,
    );
    switch (bound.kind) {
      case 'head':
        return head;
      case 'position':
        return Math.min(bound.position, head);
      case 'time':
        // A time cut alone is not causally closed (recorded_at is the transaction's start), a
        // position cut is: take every event up to the newest one recorded by then.
        return this.scalar(
          `SELECT coalesce(max(global_position), 0)::text AS value FROM ${this.events} WHERE recorded_at <= $1`,
          [bound.at],
        );
    }
  }

  /**
   * Waits until every transaction of this database that was running a moment ago has ended:
   * those are the only ones that can still commit an event below a goal read just before.
   * Scoped to this database on purpose (the snapshot xmin would also wait for other databases).
   */
  async waitForFinality(): Promise<void> {
    const [row]: Array<{ xids: string[] }> = await this.options.dataSource.query(
      `SELECT coalesce(array_agg(backend_xid::text), '{}') AS xids FROM pg_stat_activity
       WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()`,
    );
    const xids = row?.xids ?? [];
    if (xids.length === 0) return;
    const timeoutMs = this.options.finalityTimeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = await this.scalar(
        `SELECT count(*)::text AS value FROM pg_stat_activity WHERE datname = current_database() AND backend_xid::text = ANY($1::text[])`,
        [xids],
      );
      if (running === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `${running} transaction(s) that may still append events did not end within ${timeoutMs} ms`,
        );
      await sleep(FINALITY_POLL_MS);
    }
  }

  /** Drops and recreates the target tables, then applies every event up to `goalPosition`. */
  async replay(suffix: string, goalPosition: number): Promise<ReplayOutcome> {
    const target = this.target(suffix);
    const startedAt = performance.now();
    const deferredIndexes = await this.createFreshTables(target);
    const total = await this.scalar(
      `SELECT count(*)::text AS value FROM ${this.events} WHERE global_position <= $1::bigint`,
      [goalPosition],
    );
    const { events } = await this.load(target, 0, goalPosition, total, 'replay', { bulk: true });
    // Secondary indexes are built once at the end: a bulk build is far cheaper than keeping
    // them up to date row by row. Unique ones stay inline: they are checks, not speed-ups.
    for (const statement of deferredIndexes) await this.options.dataSource.query(statement);
    return { target, events, goalPosition, durationMs: performance.now() - startedAt };
  }

  /** Applies the events committed after `fromPosition` to the target (no locks); returns the new position. */
  async catchUp(suffix: string, fromPosition: number): Promise<{ position: number; events: number }> {
    const goal = await this.goalPosition({ kind: 'head' });
    if (goal <= fromPosition) return { position: fromPosition, events: 0 };
    const total = await this.scalar(
      `SELECT count(*)::text AS value FROM ${this.events} WHERE global_position > $1::bigint AND global_position <= $2::bigint`,
      [fromPosition, goal],
    );
    const { events } = await this.load(this.target(suffix), fromPosition, goal, total, 'catch_up');
    return { position: goal, events };
  }

  /**
   * Replaces the live tables with the target's, atomically. One transaction locks the live
   * tables (appends that write them wait), applies what was committed since `fromPosition`,
   * renames live → `<table>_old` (dropping an older `_old`) and target → live, and commits.
   * Writers blocked on the lock look the table names up again once it is released, so they
   * write the new tables and apply their own events there: nothing is applied twice or lost.
   */
  async swap(suffix: string, fromPosition: number): Promise<{ events: number }> {
    const target = this.target(suffix);
    for (const table of this.tables()) {
      if (!(await tableExists(this.options.dataSource, this.options.schema, table))) {
        throw new UsageError(
          `live table ${this.options.schema}.${table} does not exist (migrations not applied?)`,
        );
      }
    }
    // Most of the gap is closed without locks, so the locked part stays short.
    const unlocked = await this.catchUp(suffix, fromPosition);
    for (let attempt = 1; ; attempt += 1) {
      try {
        const locked = await this.swapLocked(target, unlocked.position);
        return { events: unlocked.events + locked };
      } catch (error) {
        // A writer that locks the tables in another order (a sweeper) can make the lock time out
        // or deadlock; the swap then rolled back entirely and simply tries again.
        const state = sqlStateOf(error);
        const retryable = state === SQLSTATE_LOCK_NOT_AVAILABLE || state === SQLSTATE_DEADLOCK_DETECTED;
        if (!retryable || attempt >= SWAP_ATTEMPTS) throw error;
      }
    }
  }

  private async swapLocked(target: ProjectionTarget, fromPosition: number): Promise<number> {
    const { schema } = this.options;
    return this.inTransaction('READ COMMITTED', async (runner) => {
      await runner.query(`SET LOCAL lock_timeout = ${SWAP_LOCK_TIMEOUT_MS}`);
      // Listed order = the order writers take them, so the lock cannot deadlock with a writer.
      await runner.query(
        `LOCK TABLE ${this.tables()
          .map((table) => qualify(schema, table))
          .join(', ')} IN ACCESS EXCLUSIVE MODE`,
      );
      const events = await this.applyVisible(runner, target, fromPosition);
      for (const table of this.tables()) {
        await runner.query(`DROP TABLE IF EXISTS ${qualify(schema, `${table}_old`)}`);
        await renameTableFamily(runner, schema, table, `${table}_old`);
        await renameTableFamily(runner, schema, `${table}${target.suffix}`, table);
      }
      return events;
    });
  }

  /**
   * Compares the live tables with the target's at one instant: in a REPEATABLE READ snapshot
   * the target is brought up to every event the snapshot sees (writes in the same
   * transaction, rolled back afterwards), then each table pair is compared. Inline projections
   * commit with their events, so the live tables in that snapshot are the projection of exactly
   * those events. Nothing is locked: a running system keeps running.
   */
  async compare(suffix: string, fromPosition: number): Promise<TableDifference[]> {
    const target = this.target(suffix);
    const runner = this.options.dataSource.createQueryRunner();
    try {
      await runner.startTransaction('REPEATABLE READ');
      try {
        await runner.query(`SET LOCAL work_mem = '64MB'`);
        await this.applyVisible(runner, target, fromPosition);
        const differences: TableDifference[] = [];
        for (const table of this.tables()) {
          differences.push(
            await compareTables(runner, this.options.schema, table, `${table}${target.suffix}`),
          );
        }
        return differences;
      } finally {
        await runner.rollbackTransaction();
      }
    } finally {
      await runner.release();
    }
  }

  async drop(suffix: string): Promise<void> {
    const target = this.target(suffix);
    for (const projection of this.options.projections)
      await dropProjectionTables(this.options.dataSource, projection, target);
  }

  /**
   * Holds a session advisory lock for one replay target, so two operators cannot replay into
   * the same shadow tables at once. Returns the release function.
   */
  async exclusive(suffix: string): Promise<() => Promise<void>> {
    const key = `ops-replay:${this.options.schema}:${suffix}`;
    const runner = this.options.dataSource.createQueryRunner();
    await runner.connect();
    const [row]: Array<{ acquired: boolean }> = await runner.query(
      `SELECT pg_try_advisory_lock(hashtext($1)) AS acquired`,
      [key],
    );
    if (!row?.acquired) {
      await runner.release();
      throw new UsageError(`another replay into ${this.options.schema}.*${suffix} is running`);
    }
    return async () => {
      try {
        await runner.query(`SELECT pg_advisory_unlock(hashtext($1))`, [key]);
      } finally {
        await runner.release();
      }
    };
  }

  tables(): string[] {
    return this.options.projections.flatMap((projection) => projection.tables);
  }

  /** Creates the target tables from scratch; returns the secondary-index statements to run after the load. */
  private async createFreshTables(target: ProjectionTarget): Promise<string[]> {
    const deferred: string[] = [];
    await this.inTransaction('READ COMMITTED', async (runner) => {
      for (const projection of this.options.projections) {
        await dropProjectionTables(runner, projection, target);
        for (const statement of projection.createTables(target)) {
          if (/^\s*CREATE\s+INDEX\b/i.test(statement)) deferred.push(statement);
          else await runner.query(statement);
        }
      }
    });
    return deferred;
  }

  /**
   * Applies the events in (fromPosition, goalPosition] batch by batch, reading the next batch
   * while the current one is applied; at most two batches are in memory. With `bulk` (a replay
   * from position 0 into fresh tables), projections that have a bulk load stream into their
   * tables through it; the others apply each batch in a transaction of its own.
   */
  private async load(
    target: ProjectionTarget,
    fromPosition: number,
    goalPosition: number,
    total: number,
    phase: OpsPhase,
    { bulk = false } = {},
  ): Promise<{ events: number }> {
    const runner = this.options.dataSource.createQueryRunner();
    const reader = this.options.dataSource.createQueryRunner();
    const connections = bulk ? new BulkLoadConnections(this.options.dataSource) : undefined;
    let done = 0;
    try {
      await runner.connect();
      const bulkLoads: BulkLoad[] = [];
      const perBatch: Projection[] = [];
      for (const projection of this.options.projections) {
        if (connections && projection.bulkLoad)
          bulkLoads.push(await projection.bulkLoad(connections.context(target)));
        else perBatch.push(projection);
      }
      this.options.onProgress?.(phase, 0, total);
      let next = this.reader.read(reader, fromPosition, goalPosition);
      for (;;) {
        const events = await next;
        if (events.length === 0) break;
        const last = events[events.length - 1]!.globalPosition;
        next =
          events.length < this.batchSize || last >= goalPosition
            ? Promise.resolve([])
            : this.reader.read(reader, last, goalPosition);
        // If applying fails, the prefetch's outcome no longer matters; do not let it go unhandled.
        next.catch(() => undefined);
        for (const load of bulkLoads) await load.apply(events);
        if (perBatch.length > 0) await this.applyBatch(runner, target, events, perBatch);
        done += events.length;
        this.options.onProgress?.(phase, done, Math.max(total, done));
      }
      for (const load of bulkLoads) await load.finish();
      await connections?.close();
      return { events: done };
    } catch (error) {
      await connections?.close(error);
      throw error;
    } finally {
      await runner.release();
      await reader.release();
    }
  }

  /** Applies every event after `fromPosition` the caller's transaction can see; returns how many. */
  private async applyVisible(
    runner: QueryRunner,
    target: ProjectionTarget,
    fromPosition: number,
  ): Promise<number> {
    let position = fromPosition;
    let applied = 0;
    for (;;) {
      const events = await this.reader.read(runner, position, null);
      if (events.length === 0) return applied;
      for (const projection of this.options.projections) await projection.apply(runner, events, target);
      position = events[events.length - 1]!.globalPosition;
      applied += events.length;
    }
  }

  private async applyBatch(
    runner: QueryRunner,
    target: ProjectionTarget,
    events: readonly RecordedEvent[],
    projections: readonly Projection[],
  ): Promise<void> {
    await runner.startTransaction('READ COMMITTED');
    try {
      // A lost batch after a crash only means replaying again: the shadow is never live
      // before the swap, whose own commit is synchronous (and flushes everything before it).
      await runner.query('SET LOCAL synchronous_commit = off');
      for (const projection of projections) await projection.apply(runner, events, target);
      await runner.commitTransaction();
    } catch (error) {
      if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
      throw error;
    }
  }

  private async inTransaction<T>(
    isolation: 'READ COMMITTED' | 'REPEATABLE READ',
    fn: (runner: QueryRunner) => Promise<T>,
  ): Promise<T> {
    const runner = this.options.dataSource.createQueryRunner();
    try {
      await runner.startTransaction(isolation);
      try {
        const result = await fn(runner);
        await runner.commitTransaction();
        return result;
      } catch (error) {
        if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
        throw error;
      }
    } finally {
      await runner.release();
    }
  }

  private async scalar(sql: string, parameters: unknown[] = []): Promise<number> {
    const [row]: Array<{ value: string }> = await this.options.dataSource.query(sql, parameters);
    const value = Number(row?.value ?? 0);
    if (!Number.isSafeInteger(value)) throw new Error(`value out of range: ${row?.value}`);
    return value;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
