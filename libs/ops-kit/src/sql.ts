const IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/** Quotes a schema, table or index name after checking it: names come from code, never from users. */
export function quoteIdentifier(name: string): string {
  if (!IDENTIFIER_PATTERN.test(name)) throw new Error(`unsafe SQL identifier: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

export function qualify(schema: string, table: string): string {
  return `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
}

/** The SQLSTATE of a failed query, through TypeORM's QueryFailedError or from pg directly. */
export function sqlStateOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const driverError = (error as { driverError?: { code?: unknown } }).driverError;
  const code = driverError?.code ?? (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

export const SQLSTATE_LOCK_NOT_AVAILABLE = '55P03';
export const SQLSTATE_DEADLOCK_DETECTED = '40P01';
