import type { QueryRunner } from 'typeorm';
import { prepared, type Projection, type ProjectionTarget, type RecordedEvent } from '@pf/event-store';
import { statusAfterResolution, type EscrowEvent } from '../domain/escrow.js';
import { decodeEscrowEvent, encodeEscrowEvent, encodePayout, ESCROW_EVENT_TYPES } from './escrow-codec.js';
import { milestonePatches, storedMilestones } from './milestone-row.js';

/**
 * The escrow service's inline projection, written in the append's transaction:
 * - `escrows`: one row per escrow (what GET, the pending lists and stats read, and the row a
 *   command locks so that commands and the deadline sweeper on one escrow take turns);
 * - `deadlines`: one row per funded or completed escrow, due at `funded time + timeout`. The
 *   timeout saga sweeps it (`due_at <= now()`, FOR UPDATE SKIP LOCKED). A deadline exists
 *   exactly while the escrow can still time out: it is deleted in the transaction that records
 *   the dispute or the settlement, so a deadline can never fire twice.
 * Pure function of the log (times are the events' recorded times), so a rebuild equals it.
 */
export const escrowProjection: Projection = {
  name: 'escrow_read_model',
  tables: ['escrows', 'deadlines'],
  createTables: (target) => [
    ...escrowTablesV1(target),
    ...evaluatorColumns(target),
    ...milestoneColumns(target),
  ],
  apply: async (runner, events, target) => {
    for (const recorded of events) {
      if (!ESCROW_EVENT_TYPES.has(recorded.type)) continue;
      await applyEvent(runner, decodeEscrowEvent(recorded.type, recorded.data), recorded, target);
    }
  },
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

async function applyEvent(
  runner: QueryRunner,
  event: EscrowEvent,
  recorded: RecordedEvent,
  target: ProjectionTarget,
): Promise<void> {
  const escrows = target.table('escrows');
  const deadlines = target.table('deadlines');
  const at = recorded.recordedAt;
  const tail = [recorded.streamVersion, recorded.globalPosition];
  switch (event.type) {
    case 'opened':
      await runner.query(
        prepared(`INSERT INTO ${escrows} (escrow_id, status, creator_id, counterparty_id, amount_micros, commission_bps, referrer_id, description,
           timeout_ms, created_at, version, position, job_id, race, evaluator_id, evaluator_fee_bps)
         VALUES ($1, 'opened', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`),
        [
          event.escrowId,
          event.creatorId,
          event.counterpartyId,
          event.amountMicros.toString(),
          event.commissionBps,
          event.referrerId,
          event.description,
          event.timeoutMs,
          at,
          ...tail,
          event.jobId ?? null,
          event.race === true,
          event.evaluatorId ?? null,
          event.evaluatorFeeBps ?? 0,
        ],
      );
      if (event.milestones)
        await runner.query(prepared(`UPDATE ${escrows} SET milestones = $2::jsonb WHERE escrow_id = $1`), [
          event.escrowId,
          JSON.stringify(storedMilestones(event.milestones)),
        ]);
      return;
    case 'funded':
      await runner.query(
        prepared(`WITH funded AS (
           UPDATE ${escrows} SET status = 'funded', funded_at = $2, auto_release_at = $2::timestamptz + timeout_ms * interval '1 millisecond',
             version = $3, position = $4
           WHERE escrow_id = $1 RETURNING escrow_id, auto_release_at
         )
         INSERT INTO ${deadlines} (escrow_id, due_at) SELECT escrow_id, auto_release_at FROM funded`),
        [event.escrowId, at, ...tail],
      );
      return;
    case 'rejected':
      await update(
        runner,
        escrows,
        event.escrowId,
        `status = 'rejected', rejection = $4`,
        [JSON.stringify(encodeEscrowEvent(event).data)],
        tail,
      );
      return;
    case 'completed':
      await update(
        runner,
        escrows,
        event.escrowId,
        `status = 'completed', completed_at = $4, result_summary = $5, deliverable = $6`,
        [at, event.resultSummary, event.deliverable ? JSON.stringify(event.deliverable) : null],
        tail,
      );
      return;
    case 'disputed':
      await updateEndingDeadline(
        runner,
        escrows,
        deadlines,
        event.escrowId,
        `status = 'disputed', disputed_at = $4, dispute_reason = $5`,
        [at, event.reason],
        tail,
      );
      return;
    case 'released':
      await updateEndingDeadline(
        runner,
        escrows,
        deadlines,
        event.escrowId,
        `status = 'released', released_at = $4, payout = $5, commission_taken_micros = $6`,
        [at, JSON.stringify(encodePayout(event.payout)), event.payout.commissionMicros.toString()],
        tail,
      );
      return;
    case 'evaluation_rejected':
      // Funded again; the deadline row stays (it exists while funded or completed).
      await update(
        runner,
        escrows,
        event.escrowId,
        `status = 'funded', reject_reason = $4, rejected_at = $5`,
        [event.reason, at],
        tail,
      );
      return;
    case 'evaluator_refunded':
      await updateEndingDeadline(
        runner,
        escrows,
        deadlines,
        event.escrowId,
        `status = 'refunded', refunded_at = $4, reject_reason = $5, rejected_at = $4`,
        [at, event.reason],
        tail,
      );
      return;
    case 'cancel_requested':
      await update(runner, escrows, event.escrowId, `cancel_requested_at = $4`, [at], tail);
      return;
    case 'cancel_consented':
      await update(runner, escrows, event.escrowId, `cancel_consented_at = $4`, [at], tail);
      return;
    case 'mutually_cancelled':
      // The second half's time is the settlement's; the first half's was recorded when it came.
      await updateEndingDeadline(
        runner,
        escrows,
        deadlines,
        event.escrowId,
        `status = 'refunded', refunded_at = $4, cancel_requested_at = coalesce(cancel_requested_at, $4), cancel_consented_at = coalesce(cancel_consented_at, $4)`,
        [at],
        tail,
      );
      return;
    case 'refunded':
    case 'declined':
    case 'cancelled':
      await updateEndingDeadline(
        runner,
        escrows,
        deadlines,
        event.escrowId,
        `status = 'refunded', refunded_at = $4`,
        [at],
        tail,
      );
      return;
    case 'milestone_completed':
    case 'milestone_released':
    case 'milestones_refunded':
      // One element patched per statement: `old || patch` keeps the fields the patch leaves out.
      for (const { index, patch } of milestonePatches(event, at))
        await update(
          runner,
          escrows,
          event.escrowId,
          `milestones = jsonb_set(milestones, ARRAY[($4::int)::text], (milestones -> $4::int) || $5::jsonb)`,
          [index, JSON.stringify(patch)],
          tail,
        );
      return;
    case 'milestones_settled':
      await updateEndingDeadline(
        runner,
        escrows,
        deadlines,
        event.escrowId,
        `status = $4, ${event.outcome === 'released' ? 'released_at' : 'refunded_at'} = $5, payout = $6, commission_taken_micros = $7`,
        [
          event.outcome,
          at,
          event.payout ? JSON.stringify(encodePayout(event.payout)) : null,
          (event.payout?.commissionMicros ?? 0n).toString(),
        ],
        tail,
      );
      return;
    case 'resolved': {
      const status = statusAfterResolution(event.outcome);
      const settledColumn = status === 'refunded' ? 'refunded_at' : 'released_at';
      await updateEndingDeadline(
        runner,
        escrows,
        deadlines,
        event.escrowId,
        `status = $4, resolved_at = $5, ${settledColumn} = $5, payout = $6, commission_taken_micros = $7`,
        [
          status,
          at,
          event.payout ? JSON.stringify(encodePayout(event.payout)) : null,
          (event.payout?.commissionMicros ?? 0n).toString(),
        ],
        tail,
      );
      return;
    }
  }
}

/** Parameters: $1 escrow id, $2 version, $3 position, $4… the `set` values. */
async function update(
  runner: QueryRunner,
  escrows: string,
  escrowId: string,
  set: string,
  values: unknown[],
  tail: number[],
): Promise<void> {
  await runner.query(
    prepared(`UPDATE ${escrows} SET ${set}, version = $2, position = $3 WHERE escrow_id = $1`),
    [escrowId, ...tail, ...values],
  );
}

/** An update that also ends the escrow's deadline, in one statement. */
async function updateEndingDeadline(
  runner: QueryRunner,
  escrows: string,
  deadlines: string,
  escrowId: string,
  set: string,
  values: unknown[],
  tail: number[],
): Promise<void> {
  await runner.query(
    prepared(`WITH ended AS (DELETE FROM ${deadlines} WHERE escrow_id = $1)
     UPDATE ${escrows} SET ${set}, version = $2, position = $3 WHERE escrow_id = $1`),
    [escrowId, ...tail, ...values],
  );
}
