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

export const escrowMigrations: Array<new () => MigrationInterface> = [
  ...eventStoreMigrations(ESCROW_SCHEMA),
  EscrowProjectionTables1764000000101,
  EscrowSettlements1764000000102,
];
