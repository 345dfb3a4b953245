import type { DataSource, QueryRunner } from 'typeorm';
import { quoteIdentifier } from './sql.js';

type Executor = Pick<QueryRunner, 'query'> | DataSource;

/** Longest identifier Postgres keeps (longer ones are silently truncated: refuse instead). */
const MAX_IDENTIFIER_CHARS = 63;
/** Differing rows listed per table; the count says how many there are in all. */
export const MAX_DIFF_ROWS_LISTED = 10;

export async function tableExists(executor: Executor, schema: string, table: string): Promise<boolean> {
  const rows: Array<{ found: boolean }> = await executor.query(
    `SELECT to_regclass($1) IS NOT NULL AS found`,
    [`${quoteIdentifier(schema)}.${quoteIdentifier(table)}`],
  );
  return rows[0]?.found === true;
}

/**
 * Renames a table and everything named after it: its indexes (which renames the constraints
 * they back: primary keys, uniques), its other constraints (checks, foreign keys) and the
 * sequences it owns (identity columns). Postgres names these `<table>_…` when created, so a
 * shadow table swapped in under the live name keeps no `_shadow` names that the next replay's
 * fresh shadow tables would collide with.
 */
export async function renameTableFamily(
  runner: Pick<QueryRunner, 'query'>,
  schema: string,
  from: string,
  to: string,
): Promise<void> {
  const qualifiedFrom = `${quoteIdentifier(schema)}.${quoteIdentifier(from)}`;
  const indexes: Array<{ name: string }> = await runner.query(
    `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass`,
    [qualifiedFrom],
  );
  const constraints: Array<{ name: string }> = await runner.query(
    `SELECT conname AS name FROM pg_constraint WHERE conrelid = $1::regclass AND conindid = 0`,
    [qualifiedFrom],
  );
  const sequences: Array<{ name: string }> = await runner.query(
    `SELECT s.relname AS name FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
     WHERE d.refobjid = $1::regclass AND d.classid = 'pg_class'::regclass AND s.relkind = 'S' AND d.deptype IN ('a', 'i')`,
    [qualifiedFrom],
  );
  const renamed = (name: string) => renamedIdentifier(name, from, to);
  await runner.query(`ALTER TABLE ${qualifiedFrom} RENAME TO ${quoteIdentifier(to)}`);
  const qualifiedTo = `${quoteIdentifier(schema)}.${quoteIdentifier(to)}`;
  for (const { name } of indexes) {
    const next = renamed(name);
    if (next)
      await runner.query(
        `ALTER INDEX ${quoteIdentifier(schema)}.${quoteIdentifier(name)} RENAME TO ${quoteIdentifier(next)}`,
      );
  }
  for (const { name } of constraints) {
    const next = renamed(name);
    if (next)
      await runner.query(
        `ALTER TABLE ${qualifiedTo} RENAME CONSTRAINT ${quoteIdentifier(name)} TO ${quoteIdentifier(next)}`,
      );
  }
  for (const { name } of sequences) {
    const next = renamed(name);
    if (next)
      await runner.query(
        `ALTER SEQUENCE ${quoteIdentifier(schema)}.${quoteIdentifier(name)} RENAME TO ${quoteIdentifier(next)}`,
      );
  }
}

/** `agents_shadow_pkey` → `agents_pkey` when renaming agents_shadow → agents; other names stay. */
export function renamedIdentifier(name: string, fromTable: string, toTable: string): string | undefined {
  if (!name.startsWith(`${fromTable}_`)) return undefined;
  const next = `${toTable}${name.slice(fromTable.length)}`;
  return next.length <= MAX_IDENTIFIER_CHARS ? next : undefined;
}

interface ColumnInfo {
  name: string;
  identity: boolean;
}

async function columnsOf(executor: Executor, schema: string, table: string): Promise<ColumnInfo[]> {
  const rows: Array<{ column_name: string; is_identity: string; is_generated: string }> =
    await executor.query(
      `SELECT column_name, is_identity, is_generated FROM information_schema.columns
     WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
      [schema, table],
    );
  return rows.map((row) => ({
    name: row.column_name,
    identity: row.is_identity === 'YES' || row.is_generated === 'ALWAYS',
  }));
}

export interface TableDifference {
  table: string;
  /** Rows present on one side and not the other (as multisets). */
  count: number;
  rows: Array<{ side: 'live' | 'replay'; row: Record<string, unknown> }>;
}

/**
 * Compares a live table with its replay as multisets of rows, leaving out identity columns
 * (surrogate ids such as `entry_id` are numbered in apply order, which a replay does not
 * promise to repeat). Runs in the caller's transaction, so both sides are seen at one instant.
 */
export async function compareTables(
  runner: Pick<QueryRunner, 'query'>,
  schema: string,
  liveTable: string,
  replayTable: string,
): Promise<TableDifference> {
  const columns = (await columnsOf(runner, schema, liveTable))
    .filter((column) => !column.identity)
    .map((column) => quoteIdentifier(column.name));
  if (columns.length === 0)
    throw new Error(`table ${schema}.${liveTable} not found or has no comparable columns`);
  const list = columns.join(', ');
  const live = `${quoteIdentifier(schema)}.${quoteIdentifier(liveTable)}`;
  const replay = `${quoteIdentifier(schema)}.${quoteIdentifier(replayTable)}`;
  const rows: Array<{ side: 'live' | 'replay'; total: string; row: Record<string, unknown> }> =
    await runner.query(
      `WITH only_live AS (SELECT ${list} FROM ${live} EXCEPT ALL SELECT ${list} FROM ${replay}),
          only_replay AS (SELECT ${list} FROM ${replay} EXCEPT ALL SELECT ${list} FROM ${live}),
          diff AS (
            SELECT 'live' AS side, to_jsonb(d) AS row FROM only_live d
            UNION ALL
            SELECT 'replay', to_jsonb(d) FROM only_replay d
          )
     SELECT side, count(*) OVER ()::text AS total, row FROM diff LIMIT ${MAX_DIFF_ROWS_LISTED}`,
    );
  return {
    table: liveTable,
    count: rows.length === 0 ? 0 : Number(rows[0]!.total),
    rows: rows.map(({ side, row }) => ({ side, row })),
  };
}

/** The columns that name a row for an operator: ids and positions, never amounts. */
export function identifyingFields(row: Record<string, unknown>): Record<string, string> {
  const ids: Record<string, string> = {};
  for (const [column, value] of Object.entries(row)) {
    if (value === null || value === undefined) continue;
    if (column.endsWith('_id') || column === 'position' || column === 'id') ids[column] = String(value);
  }
  return ids;
}
