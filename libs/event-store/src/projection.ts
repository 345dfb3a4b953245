import type { DataSource, QueryRunner } from 'typeorm';
import { qualify, quoteIdentifier } from './sql.js';
import type { BulkLoad, BulkLoadContext } from './bulk-load.js';
import type { Statement } from './pipeline.js';
import type { PendingEvent, RecordedEvent } from './types.js';

/**
 * Where a projection writes: the live tables (`suffix` '') or a fresh set for a rebuild
 * (`suffix` '_rebuild_…'). The same `apply` code writes both, so a rebuild proves the live one.
 */
export interface ProjectionTarget {
  readonly schema: string;
  readonly suffix: string;
  /** The fully qualified, quoted name of one of the projection's tables in this target. */
  table(baseName: string): string;
}

export function projectionTarget(schema: string, suffix = ''): ProjectionTarget {
  quoteIdentifier(schema);
  if (suffix !== '' && !/^_[a-z0-9_]{1,30}$/.test(suffix))
    throw new Error(`invalid projection table suffix: ${suffix}`);
  return { schema, suffix, table: (baseName: string) => qualify(schema, `${baseName}${suffix}`) };
}

/**
 * A projection of the log into tables. Inline projections run inside the append's
 * transaction (state a command must check, e.g. balances); async ones are fed by a
 * checkpointed reader (read models). Either kind can be rebuilt from position 0.
 */
export interface Projection {
  /** Stable name: the checkpoint key of async runs and rebuilds. */
  readonly name: string;
  /** Base names of the tables the projection owns (a rebuild drops and recreates them). */
  readonly tables: readonly string[];
  /** DDL creating the tables in `target`; must use `target.table(...)` for every name. */
  createTables(target: ProjectionTarget): string[];
  /**
   * Applies events, in log order, inside the caller's transaction. Ignores types it does not
   * handle. Must be a pure function of (table state, events): no clock, no randomness.
   */
  apply(runner: QueryRunner, events: readonly RecordedEvent[], target: ProjectionTarget): Promise<void>;
  /**
   * Optional fast path for rebuilding from position 0 into tables just created by
   * `createTables` (ops replay); without it a rebuild runs `apply` batch by batch.
   */
  bulkLoad?(context: BulkLoadContext): Promise<BulkLoad>;
  /**
   * Optional: `apply` as statements that need no answer from the database to be built, so a
   * writer can send the append, them and its COMMIT in one round trip (PipelinedTransaction).
   * The events were appended earlier in the same transaction, but their positions and times
   * are not known yet: the statements look them up in the log by event id. They must fail in
   * SQL wherever `apply` would throw (see the `event_store_fail` function of the store's
   * schema), and write exactly what `apply` writes for the same events. `context`, when the
   * writer gives it, says what it already knows (see PendingContext).
   */
  statements?(
    events: readonly PendingEvent[],
    target: ProjectionTarget,
    context?: PendingContext,
  ): Statement[];
}

/**
 * What a pipelined writer knows of the events it appends before the append's answer, for
 * projections that fold from their own row in JS (the state machine stays in the decider).
 */
export interface PendingContext {
  /**
   * The writing transaction's `now()`, read in an earlier round trip of the same transaction:
   * the recorded time of every event it appends (the log's default). As a JS Date
   * (milliseconds), exactly as `apply` gets `recordedAt`.
   */
  transactionTime: Date;
  /**
   * Per stream: what the writer loaded (under its lock) and the append's events follow, in the
   * shape of the projection the writer loaded it from (e.g. the projection's row; undefined: none
   * yet). A projection must check it is what it expects (its version) and refuse otherwise.
   */
  loaded: ReadonlyMap<string, unknown>;
}

/** Creates a projection's tables (e.g. from a service migration, or before a rebuild). */
export async function createProjectionTables(
  executor: Pick<QueryRunner, 'query'> | DataSource,
  projection: Projection,
  target: ProjectionTarget,
): Promise<void> {
  for (const statement of projection.createTables(target)) await executor.query(statement);
}

export async function dropProjectionTables(
  executor: Pick<QueryRunner, 'query'> | DataSource,
  projection: Projection,
  target: ProjectionTarget,
): Promise<void> {
  if (target.suffix === '')
    throw new Error(`refusing to drop the live tables of projection ${projection.name}`);
  for (const table of projection.tables) await executor.query(`DROP TABLE IF EXISTS ${target.table(table)}`);
}
