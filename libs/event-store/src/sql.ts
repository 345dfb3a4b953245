/** Identifier checks and quoting for the SQL this library builds per schema. */
const IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/** Quotes a schema or table name after checking it: names come from code, never from users. */
export function quoteIdentifier(name: string): string {
  if (!IDENTIFIER_PATTERN.test(name)) throw new Error(`unsafe SQL identifier: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** `"schema"."table"`: hot-path SQL is always fully schema-qualified, never search_path dependent. */
export function qualify(schema: string, table: string): string {
  return `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
}

/** The Postgres error behind a TypeORM QueryFailedError (or a raw pg error). */
export function postgresErrorOf(error: unknown): { code?: string; constraint?: string; message?: string } {
  if (typeof error !== 'object' || error === null) return {};
  const driverError = (error as { driverError?: unknown }).driverError;
  const source = (typeof driverError === 'object' && driverError !== null ? driverError : error) as {
    code?: unknown;
    constraint?: unknown;
    message?: unknown;
  };
  return {
    code: typeof source.code === 'string' ? source.code : undefined,
    constraint: typeof source.constraint === 'string' ? source.constraint : undefined,
    message: typeof source.message === 'string' ? source.message : undefined,
  };
}

export const PG_UNIQUE_VIOLATION = '23505';
/** RAISE EXCEPTION without a code of its own (event_store_fail). */
export const PG_RAISE_EXCEPTION = 'P0001';

/**
 * A named prepared statement for a hot-path query: Postgres parses and plans it once per
 * connection instead of on every call (the big append CTE costs more to plan than to run).
 * TypeORM's QueryRunner hands its `query` argument to node-postgres unchanged, and
 * node-postgres accepts a `{ name, text }` config there; the cast keeps TypeORM's signature.
 * Only for statements whose text is fixed per schema (never built from values).
 */
const preparedByText = new Map<string, unknown>();

export function prepared(text: string): string {
  const known = preparedByText.get(text);
  if (known) return known as string;
  let hash = 5381;
  for (let index = 0; index < text.length; index += 1) hash = ((hash * 33) ^ text.charCodeAt(index)) >>> 0;
  const statement = {
    name: `pf_${hash.toString(36)}_${text.length.toString(36)}`,
    text,
    toString: () => text,
  };
  if (preparedByText.size < 1_000) preparedByText.set(text, statement);
  return statement as unknown as string;
}

/** `prepared(text)` as a pipeline Statement (name + text) with its parameters. */
export function namedStatement(
  text: string,
  values?: unknown[],
): { name: string; text: string; values?: unknown[] } {
  const { name } = prepared(text) as unknown as { name: string };
  return { name, text, values };
}
