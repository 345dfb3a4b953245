import type { MigrationInterface } from 'typeorm';
import { eventStoreMigrations, frozenMigration } from '@pf/event-store';
import { CasinoApiKeys1765900000019 } from './keys-projection.js';

export const CASINO_SCHEMA = 'casino';

/*
 * Frozen migrations (see frozenMigration in libs/event-store): each one's DDL is the fixed text
 * below, never generated from the projection's code. A schema change is a new migration
 * appended to the list at the end; migrations.test.ts checks that a database migrated from zero
 * matches the tables casinoProjection.createTables gives a rebuild.
 */

/** The ledger's inline projection: agents, accounts (balances and lifetime counters), entries. */
const CasinoProjectionTables1764000000001 = frozenMigration('CasinoProjectionTables1764000000001', {
  up: [
    `CREATE TABLE "casino"."agents" (
      agent_id text PRIMARY KEY,
      api_key_hash bytea NOT NULL UNIQUE,
      referral_code text NOT NULL UNIQUE,
      referred_by text NULL,
      name text NULL,
      created_at timestamptz NOT NULL,
      position bigint NOT NULL
    )`,
    `CREATE INDEX ON "casino"."agents" (referred_by) WHERE referred_by IS NOT NULL`,
    `CREATE TABLE "casino"."accounts" (
      account_id text PRIMARY KEY,
      available_micros bigint NOT NULL DEFAULT 0,
      held_micros bigint NOT NULL DEFAULT 0,
      deposited_micros bigint NOT NULL DEFAULT 0,
      withdrawn_micros bigint NOT NULL DEFAULT 0,
      escrowed_micros bigint NOT NULL DEFAULT 0,
      earned_micros bigint NOT NULL DEFAULT 0,
      fees_micros bigint NOT NULL DEFAULT 0,
      referral_earned_micros bigint NOT NULL DEFAULT 0,
      CHECK (available_micros >= 0 AND held_micros >= 0)
    )`,
    `INSERT INTO "casino"."accounts" (account_id) VALUES ('faucet_treasury')`,
    `CREATE TABLE "casino"."ledger_entries" (
      entry_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      position bigint NOT NULL,
      account_id text NOT NULL,
      operation_id text NOT NULL,
      type text NOT NULL,
      amount_micros bigint NOT NULL,
      held_delta_micros bigint NOT NULL,
      balance_after_micros bigint NULL,
      reason text NOT NULL,
      service text NOT NULL,
      counterparty text NULL,
      at timestamptz NOT NULL
    )`,
    `CREATE INDEX ON "casino"."ledger_entries" (account_id, entry_id DESC)`,
  ],
  down: [
    `DROP TABLE IF EXISTS "casino"."ledger_entries"`,
    `DROP TABLE IF EXISTS "casino"."accounts"`,
    `DROP TABLE IF EXISTS "casino"."agents"`,
  ],
});

export const casinoMigrations: Array<new () => MigrationInterface> = [
  ...eventStoreMigrations(CASINO_SCHEMA),
  CasinoProjectionTables1764000000001,
  // Sub-keys and their spends (ADR 0019): a projection of its own, with fixed DDL.
  CasinoApiKeys1765900000019,
];
