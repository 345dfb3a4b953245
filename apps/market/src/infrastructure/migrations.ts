import type { MigrationInterface, QueryRunner } from 'typeorm';
import { eventStoreMigrations, projectionMigration } from '@pf/event-store';
import { marketProjection } from './market-projection.js';
import { reputationProjection } from './reputation-projection.js';

export const MARKET_SCHEMA = 'market';

const MarketProjectionTables1765000000101 = projectionMigration(
  'MarketProjectionTables1765000000101',
  MARKET_SCHEMA,
  marketProjection,
);

/**
 * The escrow-order outbox: escrow commands (cancel, release) a job decision owes. Written in
 * the transaction that records the decision (a race won or lost, a cancellation, a failed
 * award) and deleted once escrow answers; escrow is idempotent on the command id, so sending an
 * order again after a crash moves no money twice. Not in the log: whether escrow answered is
 * not a fact of the job.
 */
class MarketEscrowOrders1765000000102 implements MigrationInterface {
  readonly name = 'MarketEscrowOrders1765000000102';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`CREATE TABLE ${MARKET_SCHEMA}.escrow_orders (
      escrow_id text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('cancel', 'release')),
      job_id text NOT NULL,
      reason text NULL,
      actor_id text NOT NULL,
      attempts integer NOT NULL DEFAULT 0,
      last_error text NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (escrow_id, kind)
    )`);
    await runner.query(`CREATE INDEX ON ${MARKET_SCHEMA}.escrow_orders (next_attempt_at)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE IF EXISTS ${MARKET_SCHEMA}.escrow_orders`);
  }
}

/** Reputation's tables (ADR 0015): rebuilt from the market's log like the job tables. */
const MarketReputationTables1765000000103 = projectionMigration(
  'MarketReputationTables1765000000103',
  MARKET_SCHEMA,
  reputationProjection,
);

export const marketMigrations: Array<new () => MigrationInterface> = [
  ...eventStoreMigrations(MARKET_SCHEMA),
  MarketProjectionTables1765000000101,
  MarketEscrowOrders1765000000102,
  MarketReputationTables1765000000103,
];
