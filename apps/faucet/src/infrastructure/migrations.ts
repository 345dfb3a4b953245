import type { MigrationInterface, QueryRunner } from 'typeorm';
import { eventStoreMigrations, projectionMigration } from '@pf/event-store';
import { faucetProjection } from './faucet-projection.js';

export const FAUCET_SCHEMA = 'faucet';

export const FAUCET_TABLES = {
  depositors: `${FAUCET_SCHEMA}.depositors`,
  ipClaims: `${FAUCET_SCHEMA}.ip_claims`,
} as const;

const FaucetProjectionTables1764000000101 = projectionMigration(
  'FaucetProjectionTables1764000000101',
  FAUCET_SCHEMA,
  faucetProjection,
);

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
