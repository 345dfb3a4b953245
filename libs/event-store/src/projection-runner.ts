import type { Logger } from 'pino';
import type { EventStore } from './event-store.js';
import { CommitDrivenLoop } from './commit-driven-loop.js';
import { EVENT_STORE_TABLES } from './migrations.js';
import {
  createProjectionTables,
  dropProjectionTables,
  projectionTarget,
  type Projection,
  type ProjectionTarget,
} from './projection.js';
import { prepared, qualify } from './sql.js';
import { LOG_START, logPositionOf, type LogPosition } from './types.js';

export interface ProjectionRunOptions {
  store: EventStore;
  projection: Projection;
  /** Default: the live tables. */
  target?: ProjectionTarget;
  /** Events applied per transaction; default 1,000, at most 10,000. */
  batchSize?: number;
}

export interface BatchOutcome {
  applied: number;
  /** False when another runner of the same projection and target holds it right now. */
  acquired: boolean;
  checkpoint: LogPosition;
}

/** Checkpoint key: one per projection and target, so a rebuild never moves the live one. */
export function checkpointName(projection: Projection, target: ProjectionTarget): string {
  return `${projection.name}${target.suffix}`;
}

/**
 * Applies the next batch after the stored checkpoint and moves the checkpoint, in one
 * transaction: a crash repeats a whole batch or nothing, never half of one. An advisory lock
 * per checkpoint lets replicas run the same runner without applying a batch twice.
 */
export async function projectNextBatch(options: ProjectionRunOptions): Promise<BatchOutcome> {
  const { store, projection } = options;
  const target = options.target ?? store.liveTarget;
  const name = checkpointName(projection, target);
  const sql = checkpointSql(store.schema);
  return store.transaction(async (runner) => {
    const [lock]: Array<{ held: boolean; transaction_id: string | null; global_position: string | null }> =
      await runner.query(prepared(sql.lockAndRead), [`projection:${store.schema}:${name}`, name]);
    const checkpoint: LogPosition =
      lock!.transaction_id === null
        ? LOG_START
        : { transactionId: lock!.transaction_id, globalPosition: Number(lock!.global_position) };
    if (!lock!.held) return { applied: 0, acquired: false, checkpoint };
    const events = await store.readAll({ after: checkpoint, limit: options.batchSize ?? 1_000, runner });
    if (events.length === 0) return { applied: 0, acquired: true, checkpoint };
    await projection.apply(runner, events, target);
    const next = logPositionOf(events[events.length - 1]!);
    await runner.query(prepared(sql.save), [name, next.transactionId, next.globalPosition]);
    return { applied: events.length, acquired: true, checkpoint: next };
  });
}

/** The place of the newest event committed so far; LOG_START for an empty log. */
export async function logHead(store: EventStore): Promise<LogPosition> {
  const rows: Array<{ transaction_id: string; global_position: string }> = await store.dataSource.query(
    `SELECT e.transaction_id::text AS transaction_id, e.global_position::text AS global_position
     FROM ${qualify(store.schema, EVENT_STORE_TABLES.events)} AS e
     ORDER BY e.transaction_id DESC, e.global_position DESC LIMIT 1`,
  );
  const row = rows[0];
  return row ? { transactionId: row.transaction_id, globalPosition: Number(row.global_position) } : LOG_START;
}

export function compareLogPositions(a: LogPosition, b: LogPosition): number {
  const byTransaction = BigInt(a.transactionId) - BigInt(b.transactionId);
  if (byTransaction !== 0n) return byTransaction < 0n ? -1 : 1;
  return Math.sign(a.globalPosition - b.globalPosition);
}

export interface CatchUpOptions {
  /** Give up (throw) after this long; default 60,000 ms. */
  timeoutMs?: number;
  /** Pause while the xmin guard holds the reader back (a transaction elsewhere is open). */
  waitMs?: number;
}

/**
 * Runs batches until the checkpoint has passed `goal` (default: the head of the log when
 * called). A batch may come back empty before that while an older transaction (anywhere in
 * the cluster) is still open: the reader waits rather than skip, within the timeout.
 */
export async function catchUp(
  options: ProjectionRunOptions,
  goal?: LogPosition,
  { timeoutMs = 60_000, waitMs = 20 }: CatchUpOptions = {},
): Promise<{ applied: number; checkpoint: LogPosition }> {
  const target = goal ?? (await logHead(options.store));
  const deadline = Date.now() + timeoutMs;
  let applied = 0;
  for (;;) {
    const outcome = await projectNextBatch(options);
    applied += outcome.applied;
    if (compareLogPositions(outcome.checkpoint, target) >= 0)
      return { applied, checkpoint: outcome.checkpoint };
    if (Date.now() > deadline) {
      throw new Error(
        `projection ${options.projection.name} did not reach ${JSON.stringify(target)} within ${timeoutMs} ms`,
      );
    }
    if (outcome.applied === 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

export interface RebuildOptions extends Omit<ProjectionRunOptions, 'target'> {
  /** Suffix of the fresh tables, e.g. `_rebuild_20250101`; they are dropped first if present. */
  suffix: string;
  timeoutMs?: number;
}

export interface RebuildResult {
  target: ProjectionTarget;
  events: number;
  durationMs: number;
  eventsPerSecond: number;
}

/**
 * Rebuilds a projection from position 0 into fresh tables (same `apply` code, other table
 * names), batch by batch with a checkpoint, so memory stays bounded and a crashed rebuild
 * resumes. Returns once it holds every event committed before it started; swapping the
 * tables in (or comparing them with the live ones) is the caller's decision.
 */
export async function rebuildProjection(options: RebuildOptions): Promise<RebuildResult> {
  const { store, projection } = options;
  const target = projectionTarget(store.schema, options.suffix);
  const goal = await logHead(store);
  const startedAt = performance.now();
  await store.transaction(async (runner) => {
    await dropProjectionTables(runner, projection, target);
    await runner.query(checkpointSql(store.schema).remove, [checkpointName(projection, target)]);
    await createProjectionTables(runner, projection, target);
  });
  const { applied } = await catchUp(
    { store, projection, target, batchSize: options.batchSize ?? 5_000 },
    goal,
    { timeoutMs: options.timeoutMs ?? 600_000 },
  );
  const durationMs = performance.now() - startedAt;
  return {
    target,
    events: applied,
    durationMs,
    eventsPerSecond: applied / Math.max(durationMs / 1000, 1e-6),
  };
}

export interface AsyncProjectionRunnerOptions extends ProjectionRunOptions {
  /** How often an idle runner looks for new events; default 100 ms (commits here wake it). */
  idlePollMs?: number;
  errorBackoffMs?: number;
  logger?: Logger;
}

/** Keeps an async projection (a read model) up to date, in the background. */
export class AsyncProjectionRunner extends CommitDrivenLoop {
  constructor(private readonly options: AsyncProjectionRunnerOptions) {
    super(options.store);
  }

  protected async loop(): Promise<void> {
    const batchSize = this.options.batchSize ?? 1_000;
    while (!this.stopping) {
      this.wakeRequested = false;
      try {
        const outcome = await projectNextBatch(this.options);
        if (outcome.applied === batchSize) continue;
      } catch (error) {
        this.options.logger?.warn(
          { err: (error as Error).message, projection: this.options.projection.name },
          'projection batch failed',
        );
        await this.sleep(this.options.errorBackoffMs ?? 1_000);
        continue;
      }
      if (!this.wakeRequested) await this.sleep(this.options.idlePollMs ?? 100);
    }
  }
}

function checkpointSql(schema: string) {
  const checkpoints = qualify(schema, EVENT_STORE_TABLES.checkpoints);
  return {
    // The lock and the checkpoint in one round trip; the lock does not assign a transaction
    // id, so the reader's own transaction never lowers its snapshot's xmin. The batch commits
    // asynchronously (no fsync wait): a crash can only lose the newest batches together with
    // their checkpoint, and they are applied again; the projection never diverges.
    lockAndRead: `
      SELECT l.held, c.transaction_id::text AS transaction_id, c.global_position::text AS global_position
      FROM (SELECT pg_try_advisory_xact_lock(hashtext($1)) AS held, set_config('synchronous_commit', 'off', true)) AS l
      LEFT JOIN ${checkpoints} AS c ON c.name = $2`,
    save: `
      INSERT INTO ${checkpoints} (name, transaction_id, global_position) VALUES ($1, $2::xid8, $3)
      ON CONFLICT (name) DO UPDATE
        SET transaction_id = EXCLUDED.transaction_id, global_position = EXCLUDED.global_position, updated_at = now()`,
    remove: `DELETE FROM ${checkpoints} WHERE name = $1`,
  };
}
