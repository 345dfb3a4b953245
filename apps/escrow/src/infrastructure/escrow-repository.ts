import type { QueryRunner } from 'typeorm';
import {
  eventColumns,
  namedStatement,
  prepared,
  projectionTarget,
  recordedEventFromRow,
  type EventRow,
  type EventStore,
  type ProjectionTarget,
  type RecordedEvent,
  type Statement,
} from '@pf/event-store';
import { rememberEscrowRow } from './escrow-projection.js';
import { ESCROW_ROW_COLUMNS, type EscrowRow } from './escrow-row.js';

/** Longest stream an escrow can have: a lifecycle is at most five events. */
const MAX_STREAM_EVENTS = 100;

/** A casino post or void an escrow decision owes; written to the settlement outbox. */
export interface SettlementOrder {
  escrowId: string;
  kind: 'post' | 'void';
  splits: Array<{ to: string; amountMicros: string; reason: string }> | null;
  /**
   * A milestone's part of the hold (docs/adr/0017): posted as a casino partial post under this
   * id, which is also the outbox row's key, so an escrow can owe several parts at once.
   */
  partId?: string;
}

/** The outbox row's key: the escrow id, or a part's id (`<escrow id>:m<n>`, `<escrow id>:deadline`). */
export function settlementKey(order: Pick<SettlementOrder, 'escrowId' | 'partId'>): string {
  return order.partId ?? order.escrowId;
}

/** The order's escrow id and part id back from an outbox key. */
export function fromSettlementKey(key: string): Pick<SettlementOrder, 'escrowId' | 'partId'> {
  const separator = key.indexOf(':');
  return separator < 0 ? { escrowId: key } : { escrowId: key.slice(0, separator), partId: key };
}

export function escrowStream(escrowId: string): string {
  return `escrow-${escrowId}`;
}

/** The escrow row, and the events an earlier run of the command id wrote (empty: none). */
export interface LockedEscrow {
  row: EscrowRow | undefined;
  earlier: RecordedEvent[];
}

type LockRow = EscrowRow & { earlier: Array<Record<string, unknown>> | null };

/**
 * The escrow's SQL (the decisions are the application's, escrow-commands.ts): the row lock that
 * is also the load, the earlier run of a command id (in the same statement), the settlement
 * outbox insert, and the stream for the participants' history.
 */
export class EscrowRepository {
  private readonly lockSql: string;
  private readonly lockWithEarlierSql: string;
  private readonly readSql: string;
  private readonly earlierSql: string;
  private readonly settlementSql: string;
  private readonly target: ProjectionTarget;

  constructor(
    readonly store: EventStore,
    /** Before this, only the command's own process sends the casino call; then the sweep does. */
    private readonly settlementGraceMs: number,
  ) {
    const schema = store.schema;
    this.target = projectionTarget(schema);
    this.lockSql = `SELECT ${ESCROW_ROW_COLUMNS}, NULL::jsonb AS earlier FROM ${schema}.escrows WHERE escrow_id = $1 FOR UPDATE`;
    const earlier = (
      stream: string,
      command: string,
    ) => `SELECT ${eventColumns('e')} FROM ${schema}.events AS e
      WHERE e.stream_id = ${stream} AND e.metadata->>'commandId' = ${command}`;
    this.earlierSql = `${earlier('$1', '$2')} ORDER BY e.stream_version`;
    // Lock and replay check in one round trip. The events are read with the statement's
    // snapshot: a run of the same command id that committed while this one waited for the lock
    // is not seen here; its refusal of the repeat is answered from `earlierRun` (the caller).
    this.lockWithEarlierSql = `SELECT ${ESCROW_ROW_COLUMNS},
        (SELECT jsonb_agg(to_jsonb(x) ORDER BY x.stream_version) FROM (${earlier('$2', '$3')}) AS x) AS earlier
      FROM ${schema}.escrows WHERE escrow_id = $1 FOR UPDATE`;
    this.readSql = `SELECT ${ESCROW_ROW_COLUMNS} FROM ${schema}.escrows WHERE escrow_id = $1`;
    this.settlementSql = `
      INSERT INTO ${schema}.settlements (escrow_id, kind, splits, next_attempt_at)
      SELECT id, kind, splits::jsonb, now() + $4 * interval '1 millisecond'
      FROM unnest($1::text[], $2::text[], $3::text[]) AS s(id, kind, splits)
      ON CONFLICT (escrow_id) DO NOTHING`;
  }

  /**
   * Locks the escrow's row (FOR UPDATE: commands on one escrow and the sweeper take turns) and,
   * with a command id, reads that command's earlier events in the same statement.
   */
  async lock(runner: QueryRunner, escrowId: string, commandId?: string): Promise<LockedEscrow> {
    const statement = this.lockStatement(escrowId, commandId);
    const locked = this.lockedFrom(await runner.query(prepared(statement.text), statement.values));
    if (locked.row) this.remember(runner, locked.row);
    return locked;
  }

  /** `lock` as a statement, for a pipelined transaction; its rows go to `lockedFrom`. */
  lockStatement(escrowId: string, commandId?: string): Statement {
    return commandId
      ? namedStatement(this.lockWithEarlierSql, [escrowId, escrowStream(escrowId), commandId])
      : namedStatement(this.lockSql, [escrowId]);
  }

  lockedFrom(rows: ReadonlyArray<Record<string, unknown>>): LockedEscrow {
    const locked = rows[0] as unknown as LockRow | undefined;
    if (!locked) return { row: undefined, earlier: [] };
    const { earlier, ...row } = locked;
    return { row, earlier: (earlier ?? []).map(eventFromJson) };
  }

  /** The projection folds from `row` (already read in this transaction) instead of reading it again. */
  remember(runner: QueryRunner, row: EscrowRow): void {
    rememberEscrowRow(runner, this.target, row);
  }

  /** Outside any transaction: an earlier run of `commandId` on the escrow, and the row as it is now. */
  async earlierRun(escrowId: string, commandId: string): Promise<LockedEscrow> {
    const events = await this.store.dataSource.query(prepared(this.earlierSql), [
      escrowStream(escrowId),
      commandId,
    ]);
    if (events.length === 0) return { row: undefined, earlier: [] };
    const rows: EscrowRow[] = await this.store.dataSource.query(prepared(this.readSql), [escrowId]);
    return { row: rows[0], earlier: events.map(recordedEventFromRow) };
  }

  /** Writes settlement outbox rows, in the caller's transaction, in one statement. */
  async writeSettlements(runner: QueryRunner, settlements: readonly SettlementOrder[]): Promise<void> {
    if (settlements.length === 0) return;
    const statement = this.settlementStatement(settlements);
    await runner.query(prepared(statement.text), statement.values);
  }

  /** `writeSettlements` as a statement, for a pipelined transaction. */
  settlementStatement(settlements: readonly SettlementOrder[]): Statement {
    return namedStatement(this.settlementSql, [
      settlements.map(settlementKey),
      settlements.map((settlement) => settlement.kind),
      settlements.map((settlement) => (settlement.splits ? JSON.stringify(settlement.splits) : null)),
      this.settlementGraceMs,
    ]);
  }

  /** The escrow's whole stream (for the participants' history). */
  readStream(escrowId: string): Promise<RecordedEvent[]> {
    return this.store.readStream(escrowStream(escrowId), { maxCount: MAX_STREAM_EVENTS });
  }
}

/** An event row that travelled as jsonb: times and positions come back as text. */
function eventFromJson(json: Record<string, unknown>): RecordedEvent {
  const event = recordedEventFromRow(json as unknown as EventRow);
  return { ...event, recordedAt: new Date(json.recorded_at as string) };
}
