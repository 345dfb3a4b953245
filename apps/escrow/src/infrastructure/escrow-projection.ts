import type { QueryRunner } from 'typeorm';
import {
  EVENT_STORE_TABLES,
  namedStatement,
  prepared,
  qualify,
  type PendingContext,
  type PendingEvent,
  type Projection,
  type ProjectionTarget,
  type RecordedEvent,
  type Statement,
} from '@pf/event-store';
import type { EscrowEvent } from '../domain/escrow.js';
import { decodeEscrowEvent, ESCROW_EVENT_TYPES } from './escrow-codec.js';
import { dueAtOf, ESCROW_ROW_COLUMNS, rowAfter, type EscrowRow } from './escrow-row.js';

/**
 * The escrow service's inline projection, written in the append's transaction:
 * - `escrows`: one row per escrow (what GET, the pending lists and stats read, and the row a
 *   command locks so that commands and the deadline sweeper on one escrow take turns);
 * - `deadlines`: one row per funded or completed escrow, due at its `auto_release_at`. The
 *   timeout saga sweeps it (`due_at <= now()`, FOR UPDATE SKIP LOCKED). A deadline exists
 *   exactly while the escrow can still time out (`deadlineRuns`): it is deleted in the
 *   transaction that records the dispute or the settlement, so a deadline can never fire twice.
 * The row is `rowOf` the decider's state (escrow-row.ts), folded from the row before the events;
 * the whole row is written back in one upsert, with the deadline changes, in one statement per
 * `apply`. Pure function of the log (times are the events' recorded times), so a rebuild equals it.
 * `statements` is the same for a pipelined command (round trip 2, before the append's answer):
 * the same fold from the row the command loaded, at the transaction's now(), the same statement.
 */
export const escrowProjection: Projection = {
  name: 'escrow_read_model',
  tables: ['escrows', 'deadlines'],
  createTables: (target) => [
    ...escrowTablesV1(target),
    ...evaluatorColumns(target),
    ...milestoneColumns(target),
  ],
  apply: (runner, events, target) => applyEvents(runner, events, target),
  statements: (events, target, context) => pendingStatements(events, target, context),
};

/**
 * The tables as migration 101 created them (with 103's market columns); the migration holds the
 * same DDL as fixed text, and migrations.test.ts checks the two give the same catalogue. Later
 * columns are added by their own statements below and by their own migration.
 */
export function escrowTablesV1(target: ProjectionTarget): string[] {
  return [
    `CREATE TABLE ${target.table('escrows')} (
      escrow_id text PRIMARY KEY,
      status text NOT NULL,
      creator_id text NOT NULL,
      counterparty_id text NOT NULL,
      amount_micros bigint NOT NULL CHECK (amount_micros > 0),
      commission_bps integer NOT NULL,
      referrer_id text NULL,
      description text NOT NULL,
      result_summary text NULL,
      dispute_reason text NULL,
      rejection jsonb NULL,
      timeout_ms bigint NOT NULL,
      created_at timestamptz NOT NULL,
      funded_at timestamptz NULL,
      auto_release_at timestamptz NULL,
      completed_at timestamptz NULL,
      released_at timestamptz NULL,
      refunded_at timestamptz NULL,
      disputed_at timestamptz NULL,
      resolved_at timestamptz NULL,
      payout jsonb NULL,
      commission_taken_micros bigint NOT NULL DEFAULT 0,
      version integer NOT NULL,
      position bigint NOT NULL,
      job_id text NULL,
      race boolean NOT NULL DEFAULT false
    )`,
    `CREATE INDEX ON ${target.table('escrows')} (counterparty_id, status, created_at DESC)`,
    `CREATE INDEX ON ${target.table('escrows')} (creator_id, status, created_at DESC)`,
    // The recovery sweep looks for escrows stuck between "opened" and the hold's outcome.
    `CREATE INDEX ON ${target.table('escrows')} (created_at) WHERE status = 'opened'`,
    `CREATE TABLE ${target.table('deadlines')} (
      escrow_id text PRIMARY KEY,
      due_at timestamptz NOT NULL
    )`,
    `CREATE INDEX ON ${target.table('deadlines')} (due_at)`,
  ];
}

/**
 * Evaluators, deliverables, rejections and cancels by agreement (docs/adr/0016): the columns
 * migration 104 adds to the live table (the same text, with its fixed table name), here for a
 * rebuild's fresh tables. The partial index serves the evaluator's list of escrows to judge.
 */
export function evaluatorColumns(target: ProjectionTarget): string[] {
  const escrows = target.table('escrows');
  return [
    `ALTER TABLE ${escrows} ADD COLUMN IF NOT EXISTS evaluator_id text NULL, ADD COLUMN IF NOT EXISTS evaluator_fee_bps integer NOT NULL DEFAULT 0, ADD COLUMN IF NOT EXISTS deliverable jsonb NULL, ADD COLUMN IF NOT EXISTS reject_reason text NULL, ADD COLUMN IF NOT EXISTS rejected_at timestamptz NULL, ADD COLUMN IF NOT EXISTS cancel_requested_at timestamptz NULL, ADD COLUMN IF NOT EXISTS cancel_consented_at timestamptz NULL`,
    // Unnamed, like the other indexes: a rebuild's fresh table gets its own generated name.
    `CREATE INDEX ON ${escrows} (evaluator_id, status, created_at DESC) WHERE evaluator_id IS NOT NULL`,
  ];
}

/**
 * Milestones (docs/adr/0017): the column migration 105 adds to the live table (the same text,
 * with its fixed table name), here for a rebuild's fresh tables.
 */
export function milestoneColumns(target: ProjectionTarget): string[] {
  return [`ALTER TABLE ${target.table('escrows')} ADD COLUMN IF NOT EXISTS milestones jsonb NULL`];
}

/** The columns `rowOf` writes (all but `position`, written beside them). */
const WRITTEN_COLUMNS = [
  'escrow_id',
  'status',
  'creator_id',
  'counterparty_id',
  'amount_micros',
  'commission_bps',
  'referrer_id',
  'description',
  'result_summary',
  'dispute_reason',
  'rejection',
  'timeout_ms',
  'created_at',
  'funded_at',
  'auto_release_at',
  'completed_at',
  'released_at',
  'refunded_at',
  'disputed_at',
  'resolved_at',
  'payout',
  'commission_taken_micros',
  'version',
  'position',
  'job_id',
  'race',
  'evaluator_id',
  'evaluator_fee_bps',
  'deliverable',
  'reject_reason',
  'rejected_at',
  'cancel_requested_at',
  'cancel_consented_at',
  'milestones',
] as const;

/**
 * The rows a transaction already holds (the one a command locked, the one its append just
 * wrote), so the projection folds from them without reading the row again. Used only when its
 * version is the one the events follow; anything else is read.
 */
const knownRows = new WeakMap<QueryRunner, Map<string, EscrowRow>>();

/** Tells the projection the row the caller read (locked) in this transaction. */
export function rememberEscrowRow(runner: QueryRunner, target: ProjectionTarget, row: EscrowRow): void {
  let rows = knownRows.get(runner);
  if (!rows) knownRows.set(runner, (rows = new Map()));
  rows.set(`${target.table('escrows')} ${row.escrow_id}`, row);
}

function knownRow(runner: QueryRunner, target: ProjectionTarget, escrowId: string): EscrowRow | undefined {
  return knownRows.get(runner)?.get(`${target.table('escrows')} ${escrowId}`);
}

interface Folded {
  escrowId: string;
  firstVersion: number;
  opens: boolean;
  events: Array<{ event: EscrowEvent; recorded: RecordedEvent }>;
}

async function applyEvents(
  runner: QueryRunner,
  events: readonly RecordedEvent[],
  target: ProjectionTarget,
): Promise<void> {
  const streams = new Map<string, Folded>();
  for (const recorded of events) {
    if (!ESCROW_EVENT_TYPES.has(recorded.type)) continue;
    const event = decodeEscrowEvent(recorded.type, recorded.data);
    let folded = streams.get(event.escrowId);
    if (!folded) {
      folded = {
        escrowId: event.escrowId,
        firstVersion: recorded.streamVersion,
        opens: event.type === 'opened',
        events: [],
      };
      streams.set(event.escrowId, folded);
    }
    folded.events.push({ event, recorded });
  }
  if (streams.size === 0) return;

  const before = new Map<string, EscrowRow>();
  const missing: string[] = [];
  for (const folded of streams.values()) {
    if (folded.opens) continue;
    const known = knownRow(runner, target, folded.escrowId);
    if (known && known.version === folded.firstVersion - 1) before.set(folded.escrowId, known);
    else missing.push(folded.escrowId);
  }
  if (missing.length > 0) {
    const rows: EscrowRow[] = await runner.query(
      prepared(
        `SELECT ${ESCROW_ROW_COLUMNS} FROM ${target.table('escrows')} WHERE escrow_id = ANY($1::text[])`,
      ),
      [missing],
    );
    for (const row of rows) before.set(row.escrow_id, row);
  }

  const changes = new Changes();
  for (const folded of streams.values()) {
    const row = folded.opens ? undefined : before.get(folded.escrowId);
    if (!folded.opens && row?.version !== folded.firstVersion - 1)
      throw new Error(
        `escrow ${folded.escrowId}: the read model is at version ${row?.version ?? 'none'}, the events follow ${folded.firstVersion - 1}`,
      );
    const after = rowAfter(
      row,
      folded.events.map(({ event, recorded }) => ({
        event,
        recordedAt: recorded.recordedAt,
        streamVersion: recorded.streamVersion,
      })),
    )!;
    changes.add(row, after, folded.events.at(-1)!.recorded.globalPosition);
  }
  await runner.query(prepared(writeSql(target, 'values')), changes.values());
  if (target.suffix === '') for (const row of changes.written) rememberEscrowRow(runner, target, row);
}

/**
 * `apply` for events appended earlier in the writer's transaction, their answer not read yet
 * (PipelinedTransaction): the same fold (`rowAfter`: evolveRecord + rowOf) from the row the
 * writer loaded under its lock (PendingContext.loaded, its version the one the append followed,
 * which the append checked), at the transaction's time (the events' recorded time); the same
 * one statement, which looks the last event's position up in the log by id and fails unless
 * the events are there and were recorded at the transaction's now().
 */
function pendingStatements(
  events: readonly PendingEvent[],
  target: ProjectionTarget,
  context: PendingContext | undefined,
): Statement[] {
  const streams = new Map<string, { streamId: string; events: EscrowEvent[]; lastEventId: string }>();
  for (const pending of events) {
    if (!ESCROW_EVENT_TYPES.has(pending.type)) continue;
    const event = decodeEscrowEvent(pending.type, pending.data);
    const folded = streams.get(event.escrowId);
    if (folded) {
      folded.events.push(event);
      folded.lastEventId = pending.eventId;
    } else
      streams.set(event.escrowId, {
        streamId: pending.streamId,
        events: [event],
        lastEventId: pending.eventId,
      });
  }
  if (streams.size === 0) return [];
  if (!context) throw new Error('escrow projection: pipelined only with the writer context');
  const changes = new Changes();
  const eventIds: string[] = [];
  for (const [escrowId, folded] of streams) {
    if (!context.loaded.has(folded.streamId))
      throw new Error(`escrow ${escrowId}: the writer did not load the row its events follow`);
    const row = context.loaded.get(folded.streamId) as EscrowRow | undefined;
    if (row?.escrow_id !== undefined && row.escrow_id !== escrowId)
      throw new Error(`escrow ${escrowId}: the writer loaded the row of ${row.escrow_id}`);
    if ((row === undefined) !== (folded.events[0]!.type === 'opened'))
      throw new Error(
        `escrow ${escrowId}: ${folded.events[0]!.type} does not follow ${row ? 'a row' : 'no row'}`,
      );
    const base = row?.version ?? 0;
    const after = rowAfter(
      row,
      folded.events.map((event, index) => ({
        event,
        recordedAt: context.transactionTime,
        streamVersion: base + index + 1,
      })),
    )!;
    changes.add(row, after, null);
    eventIds.push(folded.lastEventId);
  }
  return [namedStatement(writeSql(target, 'log'), [...changes.values(), eventIds, context.transactionTime])];
}

/** The rows a batch of events leaves and the deadlines that started or ended. */
class Changes {
  readonly written: Array<EscrowRow & { position: number | null }> = [];
  private readonly ended: string[] = [];
  private readonly dueIds: string[] = [];
  private readonly dueAts: Date[] = [];

  add(before: EscrowRow | undefined, after: EscrowRow, position: number | null): void {
    this.written.push({ ...after, position });
    const [dueBefore, dueAfter] = [dueAtOf(before), dueAtOf(after)];
    if (dueBefore?.getTime() === dueAfter?.getTime()) return;
    if (dueAfter) {
      this.dueIds.push(after.escrow_id);
      this.dueAts.push(dueAfter);
    } else this.ended.push(after.escrow_id);
  }

  values(): unknown[] {
    return [JSON.stringify(this.written), this.ended, this.dueIds, this.dueAts];
  }
}

/**
 * Where the rows' positions come from: `values` (apply: the events were read from the log) or
 * `log` (statements: looked up by the last event's id, $5, in the escrows' order; $6 the time
 * the rows were folded at).
 */
type PositionSource = 'values' | 'log';

const writeSqlByKey = new Map<string, string>();

/**
 * One statement: the whole rows (an upsert, so a rebuild and the live table write alike) and the
 * deadlines that started or ended; the two id sets are disjoint.
 */
function writeSql(target: ProjectionTarget, source: PositionSource): string {
  const key = `${source} ${target.table('escrows')}`;
  let text = writeSqlByKey.get(key);
  if (text !== undefined) return text;
  const escrows = target.table('escrows');
  const deadlines = target.table('deadlines');
  const columns = WRITTEN_COLUMNS.join(', ');
  const updates = WRITTEN_COLUMNS.filter((column) => column !== 'escrow_id')
    .map((column) => `${column} = EXCLUDED.${column}`)
    .join(', ');
  const rows =
    source === 'values'
      ? `SELECT ${columns} FROM jsonb_populate_recordset(NULL::${escrows}, $1::jsonb)`
      : `SELECT ${WRITTEN_COLUMNS.map((column) => (column === 'position' ? 'log.position' : `r.${column}`)).join(', ')}
         FROM jsonb_populate_recordset(NULL::${escrows}, $1::jsonb) WITH ORDINALITY AS r
         JOIN log ON log.ord = r.ordinality`;
  const log =
    source === 'values'
      ? ''
      : `log AS (
         SELECT e.ord, ev.global_position AS position
         FROM unnest($5::uuid[]) WITH ORDINALITY AS e(event_id, ord)
         -- LATERAL ... LIMIT 1: a unique-index lookup whatever plan was cached.
         LEFT JOIN LATERAL (
           SELECT global_position, recorded_at FROM ${qualify(target.schema, EVENT_STORE_TABLES.events)} AS ev
           WHERE ev.event_id = e.event_id LIMIT 1
         ) AS ev ON true
         -- The fold used the time the writer read ($6): the events must be in the log, recorded
         -- at this transaction's now(), and $6 must be that time as a JS Date (the pg parser
         -- keeps milliseconds, rounding down: at most 2 ms below).
         WHERE CASE WHEN ev.recorded_at = now() AND $6::timestamptz <= now() AND now() - $6::timestamptz < interval '2 milliseconds' THEN true
           ELSE ${qualify(target.schema, 'event_store_fail')}('escrow projection: event ' || e.event_id || ' is not in the log at this transaction''s time') END
       ), `;
  text = `WITH ${log}written AS (
       INSERT INTO ${escrows} (${columns})
       ${rows}
       ON CONFLICT (escrow_id) DO UPDATE SET ${updates}
     ), ended AS (
       DELETE FROM ${deadlines} WHERE escrow_id = ANY($2::text[])
     )
     INSERT INTO ${deadlines} (escrow_id, due_at)
     SELECT * FROM unnest($3::text[], $4::timestamptz[]) ON CONFLICT (escrow_id) DO NOTHING`;
  if (writeSqlByKey.size < 16) writeSqlByKey.set(key, text);
  return text;
}
