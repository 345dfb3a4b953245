import type { MigrationInterface, QueryRunner } from 'typeorm';
import { qualify, quoteIdentifier } from './sql.js';

/** Names of the event store's tables; all live in the owning service's schema. */
export const EVENT_STORE_TABLES = {
  events: 'events',
  outbox: 'outbox',
  checkpoints: 'projection_checkpoints',
  inbox: 'inbox',
} as const;

/**
 * Migrations are frozen: each one's DDL is fixed text written in the migration itself, never
 * generated from current code (a projection's `createTables`, say). Otherwise an edit to that
 * code would silently change an old migration for new databases only, and old and new databases
 * would drift apart. A schema change is a NEW migration with its own fixed text; each service's
 * migrations test checks that a database migrated from zero has the shape its projection code
 * expects (the shape `createTables` gives a rebuild).
 *
 * The class for one migration: `up` and `down` run their statements in order. `name` must end
 * in a 13-digit timestamp, as TypeORM requires.
 */
export function frozenMigration(
  name: string,
  statements: { readonly up: readonly string[]; readonly down: readonly string[] },
): new () => MigrationInterface {
  if (!/[0-9]{13}$/.test(name)) throw new Error(`migration name must end in a 13-digit timestamp: ${name}`);
  return class FrozenMigration implements MigrationInterface {
    readonly name = name;

    async up(runner: QueryRunner): Promise<void> {
      for (const statement of statements.up) await runner.query(statement);
    }

    async down(runner: QueryRunner): Promise<void> {
      for (const statement of statements.down) await runner.query(statement);
    }
  };
}

/**
 * The event store's DDL for one schema. Frozen (see frozenMigration): only the schema name is a
 * parameter, since every service and test run has its own.
 * - `events`: the append-only log. `transaction_id` (xid8) lets readers wait for slow
 *   transactions instead of skipping their positions (see EventStore.readAll).
 * - `outbox`: events committed but not yet on JetStream, one row per event, deleted once the
 *   relay has the broker's ack. `events` stays the record of what exists.
 * - `projection_checkpoints`: how far each async projection (or rebuild) has applied the log.
 * - `inbox`: events a consumer has already processed, because the broker only deduplicates
 *   within its duplicate window.
 */
export function eventStoreDdl(schema: string): string[] {
  const events = qualify(schema, EVENT_STORE_TABLES.events);
  const guard = qualify(schema, 'events_are_immutable');
  return [
    `CREATE TABLE ${events} (
      global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      stream_id text NOT NULL,
      stream_version integer NOT NULL CHECK (stream_version > 0),
      event_id uuid NOT NULL,
      type text NOT NULL,
      data jsonb NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
      recorded_at timestamptz NOT NULL DEFAULT now(),
      transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
      CONSTRAINT events_event_id_unique UNIQUE (event_id),
      CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version)
    )`,
    `CREATE INDEX events_transaction_order ON ${events} (transaction_id, global_position)`,
    // Immutability lives in the database, not in a convention: no role that can write the
    // log can rewrite it. Row triggers cover UPDATE/DELETE, a statement trigger TRUNCATE.
    `CREATE FUNCTION ${guard}() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       RAISE EXCEPTION 'events are immutable: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
         USING ERRCODE = 'restrict_violation';
     END $$`,
    `CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON ${events}
       FOR EACH ROW EXECUTE FUNCTION ${guard}()`,
    `CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON ${events}
       FOR EACH STATEMENT EXECUTE FUNCTION ${guard}()`,
    `CREATE TABLE ${qualify(schema, EVENT_STORE_TABLES.outbox)} (
      global_position bigint PRIMARY KEY,
      created_at timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE TABLE ${qualify(schema, EVENT_STORE_TABLES.checkpoints)} (
      name text PRIMARY KEY,
      transaction_id xid8 NOT NULL,
      global_position bigint NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE TABLE ${qualify(schema, EVENT_STORE_TABLES.inbox)} (
      consumer text NOT NULL,
      event_id uuid NOT NULL,
      processed_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (consumer, event_id)
    )`,
  ];
}

const EVENT_STORE_MIGRATION_TIMESTAMP = 1730000000000;
const EVENT_STORE_FAIL_MIGRATION_TIMESTAMP = 1764100000000;

/**
 * `<schema>.event_store_fail(message)`: raises an error (SQLSTATE P0001) with the message. For
 * checks inside statements that are pipelined with their COMMIT (Projection.statements): a
 * failed check must abort the transaction in SQL, since nothing reads the answer before the
 * COMMIT is on its way. Typed boolean so it fits in CASE and WHERE.
 */
export function eventStoreFailFunctionDdl(schema: string): string {
  return `CREATE OR REPLACE FUNCTION ${qualify(schema, 'event_store_fail')}(message text) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '%', message USING ERRCODE = 'P0001';
    END $$`;
}

/**
 * TypeORM migration classes creating the event store in `schema`. TypeORM reads the timestamp
 * from the last 13 characters of the name; the schema in the name keeps names unique when
 * several schemas' migrations are listed together.
 */
export function eventStoreMigrations(schema: string): Array<new () => MigrationInterface> {
  quoteIdentifier(schema);
  const schemaPart = schema
    .split('_')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
  const migrationName = `EventStore${schemaPart}${EVENT_STORE_MIGRATION_TIMESTAMP}`;

  class EventStoreMigration implements MigrationInterface {
    readonly name = migrationName;

    async up(runner: QueryRunner): Promise<void> {
      for (const statement of eventStoreDdl(schema)) await runner.query(statement);
    }

    async down(runner: QueryRunner): Promise<void> {
      for (const table of Object.values(EVENT_STORE_TABLES)) {
        await runner.query(`DROP TABLE IF EXISTS ${qualify(schema, table)}`);
      }
      await runner.query(`DROP FUNCTION IF EXISTS ${qualify(schema, 'events_are_immutable')}()`);
    }
  }

  class EventStoreFailFunctionMigration implements MigrationInterface {
    readonly name = `EventStoreFail${schemaPart}${EVENT_STORE_FAIL_MIGRATION_TIMESTAMP}`;

    async up(runner: QueryRunner): Promise<void> {
      await runner.query(eventStoreFailFunctionDdl(schema));
    }

    async down(runner: QueryRunner): Promise<void> {
      await runner.query(`DROP FUNCTION IF EXISTS ${qualify(schema, 'event_store_fail')}(text)`);
    }
  }
  return [EventStoreMigration, EventStoreFailFunctionMigration];
}
