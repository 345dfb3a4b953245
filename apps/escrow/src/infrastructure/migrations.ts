import type { MigrationInterface, QueryRunner } from 'typeorm';
import { eventStoreMigrations, projectionMigration } from '@pf/event-store';
import { escrowProjection } from './escrow-projection.js';

export const ESCROW_SCHEMA = 'escrow';

const EscrowProjectionTables1764000000101 = projectionMigration(
  'EscrowProjectionTables1764000000101',
  ESCROW_SCHEMA,
  escrowProjection,
);

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
 * New databases get the columns from the projection's own DDL; IF NOT EXISTS makes this a no-op
 * there, and adds them (at the end, in the DDL's order) to databases created before.
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

export const escrowMigrations: Array<new () => MigrationInterface> = [
  ...eventStoreMigrations(ESCROW_SCHEMA),
  EscrowProjectionTables1764000000101,
  EscrowSettlements1764000000102,
  EscrowJobColumns1764000000103,
];
