import type { MigrationInterface, QueryRunner } from 'typeorm';
import { eventStoreMigrations, frozenMigration } from '@pf/event-store';

export const FAUCET_SCHEMA = 'faucet';

export const FAUCET_TABLES = {
  depositors: `${FAUCET_SCHEMA}.depositors`,
  ipClaims: `${FAUCET_SCHEMA}.ip_claims`,
} as const;

/*
 * Frozen migrations (see frozenMigration in libs/event-store): each one's DDL is fixed text,
 * never generated from the projection's code. A schema change is a new migration appended to
 * the list at the end; migrations.test.ts checks that a database migrated from zero matches the
 * tables faucetProjection.createTables gives a rebuild.
 */

/** The faucet's inline projection: the treasury budget (one row) and the claims. */
const FaucetProjectionTables1764000000101 = frozenMigration('FaucetProjectionTables1764000000101', {
  up: [
    `CREATE TABLE "faucet"."treasury" (
      id boolean PRIMARY KEY DEFAULT true CHECK (id),
      funded_micros bigint NOT NULL DEFAULT 0,
      reserved_micros bigint NOT NULL DEFAULT 0,
      claimed_micros bigint NOT NULL DEFAULT 0,
      claims_pending integer NOT NULL DEFAULT 0 CHECK (claims_pending >= 0),
      claims_completed integer NOT NULL DEFAULT 0 CHECK (claims_completed >= 0),
      CHECK (0 <= claimed_micros AND claimed_micros <= reserved_micros AND reserved_micros <= funded_micros)
    )`,
    `INSERT INTO "faucet"."treasury" DEFAULT VALUES`,
    `CREATE TABLE "faucet"."claims" (
      claim_id uuid PRIMARY KEY,
      agent_id text NOT NULL,
      amount_micros bigint NOT NULL CHECK (amount_micros > 0),
      status text NOT NULL CHECK (status IN ('pending', 'completed', 'rejected')),
      stalled boolean NOT NULL DEFAULT false,
      requested_at timestamptz NOT NULL,
      completed_at timestamptz NULL,
      position bigint NOT NULL
    )`,
    `CREATE UNIQUE INDEX ON "faucet"."claims" (agent_id) WHERE status <> 'rejected'`,
    `CREATE INDEX ON "faucet"."claims" (requested_at) WHERE status = 'pending'`,
  ],
  down: [`DROP TABLE IF EXISTS "faucet"."claims"`, `DROP TABLE IF EXISTS "faucet"."treasury"`],
});

/**
 * State that is not in the faucet's log:
 * - `depositors`: agents casino reported a deposit for (fed by `casino.events.funds_transferred`
 *   through the inbox, so each event counts once). The faucet never reads casino's tables.
 * - `ip_claims`: which client address recorded which claim, for the per-address limit. Kept
 *   out of the immutable log (and so out of the published events) on purpose: addresses are
 *   personal data, needed for a day, then deleted by the sweep.
 */
class FaucetOperationalTables1764000000102 implements MigrationInterface {
  readonly name = 'FaucetOperationalTables1764000000102';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`CREATE TABLE ${FAUCET_TABLES.depositors} (
      agent_id text PRIMARY KEY,
      first_transfer_id text NOT NULL,
      first_event_id uuid NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT now()
    )`);
    await runner.query(`CREATE TABLE ${FAUCET_TABLES.ipClaims} (
      claim_id uuid PRIMARY KEY,
      client_ip text NOT NULL,
      agent_id text NOT NULL,
      claimed_at timestamptz NOT NULL DEFAULT now()
    )`);
    await runner.query(
      `CREATE INDEX ip_claims_by_address ON ${FAUCET_TABLES.ipClaims} (client_ip, claimed_at)`,
    );
    await runner.query(`CREATE INDEX ip_claims_by_age ON ${FAUCET_TABLES.ipClaims} (claimed_at)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE IF EXISTS ${FAUCET_TABLES.ipClaims}`);
    await runner.query(`DROP TABLE IF EXISTS ${FAUCET_TABLES.depositors}`);
  }
}

export const faucetMigrations: Array<new () => MigrationInterface> = [
  ...eventStoreMigrations(FAUCET_SCHEMA),
  FaucetProjectionTables1764000000101,
  FaucetOperationalTables1764000000102,
];
