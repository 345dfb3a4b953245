import type { MigrationInterface, QueryRunner } from 'typeorm';
import { eventStoreMigrations, frozenMigration } from '@pf/event-store';

export const ESCROW_SCHEMA = 'escrow';

/*
 * Frozen migrations (see frozenMigration in libs/event-store): each one's DDL is fixed text,
 * never generated from the projection's code. A schema change is a new migration appended to
 * the list at the end; migrations.test.ts checks that a database migrated from zero matches the
 * tables escrowProjection.createTables gives a rebuild.
 */

/**
 * The escrow read model and the deadline rows of the timeout saga. Frozen as this migration
 * created them for new databases when it was frozen (job_id and race included; databases
 * created before got those two from EscrowJobColumns1764000000103).
 */
const EscrowProjectionTables1764000000101 = frozenMigration('EscrowProjectionTables1764000000101', {
  up: [
    `CREATE TABLE "escrow"."escrows" (
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
    `CREATE INDEX ON "escrow"."escrows" (counterparty_id, status, created_at DESC)`,
    `CREATE INDEX ON "escrow"."escrows" (creator_id, status, created_at DESC)`,
    `CREATE INDEX ON "escrow"."escrows" (created_at) WHERE status = 'opened'`,
    `CREATE TABLE "escrow"."deadlines" (
      escrow_id text PRIMARY KEY,
      due_at timestamptz NOT NULL
    )`,
    `CREATE INDEX ON "escrow"."deadlines" (due_at)`,
  ],
  down: [`DROP TABLE IF EXISTS "escrow"."deadlines"`, `DROP TABLE IF EXISTS "escrow"."escrows"`],
});

/**
 * The settlement outbox: casino posts and voids an escrow decision still owes. A row is written
 * in the transaction that records the decision (released, refunded, declined, resolved, or a
 * hold that arrived after its escrow was rejected) and deleted once casino confirms. Casino
 * commands are idempotent on the hold id (= escrow id), so re-sending after a crash is safe.
 * Not part of the projection: whether casino has confirmed is not in the log.
 */
class EscrowSettlements1764000000102 implements MigrationInterface {
  readonly name = 'EscrowSettlements1764000000102';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`CREATE TABLE ${ESCROW_SCHEMA}.settlements (
      escrow_id text PRIMARY KEY,
      kind text NOT NULL CHECK (kind IN ('post', 'void')),
      splits jsonb NULL,
      attempts integer NOT NULL DEFAULT 0,
      last_error text NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      next_attempt_at timestamptz NOT NULL
    )`);
    await runner.query(`CREATE INDEX ON ${ESCROW_SCHEMA}.settlements (next_attempt_at)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE IF EXISTS ${ESCROW_SCHEMA}.settlements`);
  }
}

/**
 * Market escrows (docs/adr/0011): the job an escrow pays for and whether it is one of a race.
 * New databases get the columns from EscrowProjectionTables1764000000101; IF NOT EXISTS makes
 * this a no-op there, and adds them (at the end, in the DDL's order) to databases created before.
 */
class EscrowJobColumns1764000000103 implements MigrationInterface {
  readonly name = 'EscrowJobColumns1764000000103';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      `ALTER TABLE ${ESCROW_SCHEMA}.escrows ADD COLUMN IF NOT EXISTS job_id text NULL, ADD COLUMN IF NOT EXISTS race boolean NOT NULL DEFAULT false`,
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(
      `ALTER TABLE ${ESCROW_SCHEMA}.escrows DROP COLUMN IF EXISTS job_id, DROP COLUMN IF EXISTS race`,
    );
  }
}

/**
 * Evaluators, deliverables, evaluator rejections and cancels by agreement (docs/adr/0016). Fixed
 * text (not rendered from the projection), so what this migration does never changes; the
 * projection's `evaluatorColumns` adds the same columns to a rebuild's fresh tables.
 */
class EscrowEvaluatorColumns1764000000104 implements MigrationInterface {
  readonly name = 'EscrowEvaluatorColumns1764000000104';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      `ALTER TABLE escrow.escrows ADD COLUMN IF NOT EXISTS evaluator_id text NULL, ADD COLUMN IF NOT EXISTS evaluator_fee_bps integer NOT NULL DEFAULT 0, ADD COLUMN IF NOT EXISTS deliverable jsonb NULL, ADD COLUMN IF NOT EXISTS reject_reason text NULL, ADD COLUMN IF NOT EXISTS rejected_at timestamptz NULL, ADD COLUMN IF NOT EXISTS cancel_requested_at timestamptz NULL, ADD COLUMN IF NOT EXISTS cancel_consented_at timestamptz NULL`,
    );
    await runner.query(
      // Unnamed like the other indexes, so a rebuild's tables (escrowProjection) get the same name.
      `CREATE INDEX ON escrow.escrows (evaluator_id, status, created_at DESC) WHERE evaluator_id IS NOT NULL`,
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX IF EXISTS escrow.escrows_evaluator_id_status_created_at_idx`);
    await runner.query(
      `ALTER TABLE escrow.escrows DROP COLUMN IF EXISTS evaluator_id, DROP COLUMN IF EXISTS evaluator_fee_bps, DROP COLUMN IF EXISTS deliverable, DROP COLUMN IF EXISTS reject_reason, DROP COLUMN IF EXISTS rejected_at, DROP COLUMN IF EXISTS cancel_requested_at, DROP COLUMN IF EXISTS cancel_consented_at`,
    );
  }
}

/**
 * Milestones (docs/adr/0017): one jsonb column holding the milestones and their progress. Fixed
 * text; the projection's `milestoneColumns` adds the same column to a rebuild's fresh tables.
 */
class EscrowMilestoneColumn1764000000105 implements MigrationInterface {
  readonly name = 'EscrowMilestoneColumn1764000000105';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`ALTER TABLE escrow.escrows ADD COLUMN IF NOT EXISTS milestones jsonb NULL`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`ALTER TABLE escrow.escrows DROP COLUMN IF EXISTS milestones`);
  }
}

export const escrowMigrations: Array<new () => MigrationInterface> = [
  ...eventStoreMigrations(ESCROW_SCHEMA),
  EscrowProjectionTables1764000000101,
  EscrowSettlements1764000000102,
  EscrowJobColumns1764000000103,
  EscrowEvaluatorColumns1764000000104,
  EscrowMilestoneColumn1764000000105,
];
