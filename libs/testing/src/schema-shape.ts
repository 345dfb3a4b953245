import pg from 'pg';
import { DataSource, type MigrationInterface } from 'typeorm';
import { createTestDatabase } from './database.js';

/** What a table looks like to the code that uses it: columns, indexes, constraints, triggers, rows. */
export interface TableShape {
  columns: string[];
  indexes: string[];
  constraints: string[];
  triggers: string[];
  /** Rows present right after creation (seeds such as the faucet's treasury row). */
  rows: string[];
}

export interface SchemaShape {
  tables: Record<string, TableShape>;
  functions: string[];
}

/**
 * The shape of `schema` as comparable text, read from the catalogue (information_schema
 * columns with types, nullability, defaults and identity; index and constraint definitions as
 * Postgres prints them; triggers; functions). Column order counts: `SELECT *` readers see it.
 */
export async function describeSchema(client: pg.Client, schema: string): Promise<SchemaShape> {
  const tables: Record<string, TableShape> = {};
  const tableOf = (name: string): TableShape =>
    (tables[name] ??= { columns: [], indexes: [], constraints: [], triggers: [], rows: [] });
  const columns = await client.query<{ table_name: string; line: string }>(
    `SELECT table_name, concat_ws(' ', column_name, udt_name, is_nullable, 'default:' || column_default,
              'identity:' || identity_generation) AS line
       FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position`,
    [schema],
  );
  for (const row of columns.rows) tableOf(row.table_name).columns.push(row.line);
  const indexes = await client.query<{ tablename: string; indexdef: string }>(
    `SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY tablename, indexname`,
    [schema],
  );
  for (const row of indexes.rows) tableOf(row.tablename).indexes.push(row.indexdef);
  const constraints = await client.query<{ relname: string; line: string }>(
    `SELECT c.relname, con.conname || ' ' || pg_get_constraintdef(con.oid) AS line
       FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = con.connamespace
      WHERE n.nspname = $1 ORDER BY c.relname, con.conname`,
    [schema],
  );
  for (const row of constraints.rows) tableOf(row.relname).constraints.push(row.line);
  const triggers = await client.query<{ relname: string; line: string }>(
    `SELECT c.relname, t.tgname || ' ' || pg_get_triggerdef(t.oid) AS line
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND NOT t.tgisinternal ORDER BY c.relname, t.tgname`,
    [schema],
  );
  for (const row of triggers.rows) tableOf(row.relname).triggers.push(row.line);
  for (const name of Object.keys(tables)) {
    const rows = await client.query<{ row: string }>(
      `SELECT to_jsonb(t)::text AS row FROM "${schema}"."${name}" t ORDER BY 1`,
    );
    tables[name]!.rows = rows.rows.map((row) => row.row);
  }
  const functions = await client.query<{ definition: string }>(
    `SELECT pg_get_functiondef(p.oid) AS definition FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = $1 ORDER BY p.proname`,
    [schema],
  );
  return { tables, functions: functions.rows.map((row) => row.definition) };
}

/**
 * Two fresh databases: one migrated from zero with `migrations` (as a service's start does),
 * one where `expectedDdl` (the code's own DDL: the event store's and each projection's
 * `createTables`) ran into an empty `schema`. Returns both shapes for a test to compare.
 */
export async function migratedAndExpectedShapes(options: {
  label: string;
  schema: string;
  migrations: Array<new () => MigrationInterface>;
  expectedDdl: readonly string[];
}): Promise<{ migrated: SchemaShape; expected: SchemaShape }> {
  const migratedDatabase = await createTestDatabase(`${options.label}mig`);
  const expectedDatabase = await createTestDatabase(`${options.label}exp`);
  try {
    const dataSource = new DataSource({
      type: 'postgres',
      url: migratedDatabase.url,
      schema: options.schema,
      migrations: options.migrations,
      migrationsTableName: 'migrations',
      migrationsTransactionMode: 'each',
      synchronize: false,
      logging: false,
      extra: { max: 1 },
    });
    await dataSource.initialize();
    try {
      await dataSource.query(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"`);
      await dataSource.runMigrations({ transaction: 'each' });
    } finally {
      await dataSource.destroy();
    }
    const expectedClient = new pg.Client({ connectionString: expectedDatabase.url });
    await expectedClient.connect();
    try {
      await expectedClient.query(`CREATE SCHEMA "${options.schema}"`);
      for (const statement of options.expectedDdl) await expectedClient.query(statement);
    } finally {
      await expectedClient.end();
    }
    const read = async (url: string): Promise<SchemaShape> => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return await describeSchema(client, options.schema);
      } finally {
        await client.end();
      }
    };
    return { migrated: await read(migratedDatabase.url), expected: await read(expectedDatabase.url) };
  } finally {
    await migratedDatabase.drop();
    await expectedDatabase.drop();
  }
}

/** `shape` restricted to the named tables (the ones a projection owns, say). */
export function pickTables(
  shape: SchemaShape,
  names: readonly string[],
): Record<string, TableShape | undefined> {
  return Object.fromEntries(names.map((name) => [name, shape.tables[name]]));
}
