import type { MigrationInterface, QueryRunner } from 'typeorm';
import { eventStoreMigrations, frozenMigration } from '@pf/event-store';

export const MARKET_SCHEMA = 'market';

/*
 * Frozen migrations (see frozenMigration in libs/event-store): each one's DDL is fixed text,
 * never generated from the projections' code. A schema change is a new migration appended to
 * the list at the end; migrations.test.ts checks that a database migrated from zero matches the
 * tables marketProjection and reputationProjection.createTables give a rebuild.
 */

/** The job read model: jobs, bids, awards, and the award deadlines the sweeper watches. */
const MarketProjectionTables1765000000101 = frozenMigration('MarketProjectionTables1765000000101', {
  up: [
    `CREATE TABLE "market"."jobs" (
      job_id text PRIMARY KEY,
      poster_id text NOT NULL,
      status text NOT NULL,
      title text NOT NULL,
      tags text[] NOT NULL,
      budget_micros bigint NOT NULL CHECK (budget_micros > 0),
      posted_position bigint NOT NULL,
      posted_at timestamptz NOT NULL,
      awarding_since timestamptz NULL,
      state jsonb NOT NULL,
      version integer NOT NULL,
      position bigint NOT NULL
    )`,
    `CREATE INDEX ON "market"."jobs" (status, posted_position DESC)`,
    `CREATE INDEX ON "market"."jobs" (posted_position DESC)`,
    `CREATE INDEX ON "market"."jobs" (poster_id, posted_position DESC)`,
    `CREATE INDEX ON "market"."jobs" (awarding_since) WHERE status = 'awarding'`,
    `CREATE TABLE "market"."bids" (
      bid_id text PRIMARY KEY,
      job_id text NOT NULL,
      worker_id text NOT NULL,
      price_micros bigint NOT NULL,
      eta_minutes integer NOT NULL,
      note text NULL,
      status text NOT NULL,
      placed_at timestamptz NOT NULL,
      position bigint NOT NULL
    )`,
    `CREATE INDEX ON "market"."bids" (job_id, position)`,
    `CREATE INDEX ON "market"."bids" (worker_id, position DESC)`,
    `CREATE TABLE "market"."awards" (
      escrow_id text PRIMARY KEY,
      job_id text NOT NULL,
      bid_id text NOT NULL,
      worker_id text NOT NULL,
      attempt integer NOT NULL,
      price_micros bigint NOT NULL
    )`,
    `CREATE INDEX ON "market"."awards" (job_id)`,
    `CREATE TABLE "market"."deadlines" (
      job_id text PRIMARY KEY,
      due_at timestamptz NOT NULL
    )`,
    `CREATE INDEX ON "market"."deadlines" (due_at)`,
  ],
  down: [
    `DROP TABLE IF EXISTS "market"."deadlines"`,
    `DROP TABLE IF EXISTS "market"."awards"`,
    `DROP TABLE IF EXISTS "market"."bids"`,
    `DROP TABLE IF EXISTS "market"."jobs"`,
  ],
});

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
const MarketReputationTables1765000000103 = frozenMigration('MarketReputationTables1765000000103', {
  up: [
    `CREATE TABLE "market"."rep_escrows" (
      escrow_id text PRIMARY KEY,
      creator_id text NULL,
      worker_id text NULL,
      facts jsonb NOT NULL
    )`,
    `CREATE INDEX ON "market"."rep_escrows" (creator_id)`,
    `CREATE INDEX ON "market"."rep_escrows" (worker_id)`,
    `CREATE TABLE "market"."rep_jobs" (
      job_id text PRIMARY KEY,
      poster_id text NOT NULL,
      posted_at text NOT NULL,
      awarded_workers text[] NOT NULL
    )`,
    `CREATE INDEX ON "market"."rep_jobs" (poster_id)`,
    `CREATE INDEX ON "market"."rep_jobs" USING gin (awarded_workers)`,
    `CREATE TABLE "market"."rep_ratings" (
      escrow_id text NOT NULL,
      rater_id text NOT NULL,
      ratee_id text NOT NULL,
      score smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
      comment text NULL,
      amount_micros bigint NOT NULL,
      rated_at timestamptz NOT NULL,
      position bigint NOT NULL,
      PRIMARY KEY (escrow_id, rater_id)
    )`,
    `CREATE INDEX ON "market"."rep_ratings" (ratee_id, position DESC)`,
  ],
  down: [
    `DROP TABLE IF EXISTS "market"."rep_ratings"`,
    `DROP TABLE IF EXISTS "market"."rep_jobs"`,
    `DROP TABLE IF EXISTS "market"."rep_escrows"`,
  ],
});

export const marketMigrations: Array<new () => MigrationInterface> = [
  ...eventStoreMigrations(MARKET_SCHEMA),
  MarketProjectionTables1765000000101,
  MarketEscrowOrders1765000000102,
  MarketReputationTables1765000000103,
];
