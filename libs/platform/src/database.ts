import type { Logger } from 'pino';
import { DataSource, type MigrationInterface } from 'typeorm';
import { retryUntil } from './retry.js';

export interface DatabaseOptions {
  url: string;
  /** The service's own schema: every table it owns lives here and nowhere else. */
  schema: string;
  poolMax: number;
  applicationName: string;
  migrations: Array<new () => MigrationInterface>;
  logger: Logger;
  /** Postgres `plan_cache_mode` of every connection (ServiceDefinition.planCacheMode); Postgres's default, `auto`, when absent. */
  planCacheMode?: PlanCacheMode;
}

/**
 * How Postgres plans the service's prepared statements: `auto` re-plans a statement for its
 * parameters on each execution while a custom plan looks cheaper than the generic one;
 * `force_generic_plan` plans it once per connection.
 */
export type PlanCacheMode = 'auto' | 'force_generic_plan';

/** A TypeORM data source on the service's schema; the pool is small on purpose (2 cores). */
export function createDataSource(options: DatabaseOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: options.url,
    schema: options.schema,
    migrations: options.migrations,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
    poolErrorHandler: (error: Error) => options.logger.warn({ err: error.message }, 'postgres pool error'),
    extra: {
      max: options.poolMax,
      application_name: options.applicationName,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      statement_timeout: 30_000,
      // pg's pipeline mode: a query goes on the wire as soon as it is issued, so statements
      // issued together (see pipelined() in libs/event-store) share one write and one round
      // trip. Statements awaited one by one behave exactly as without it.
      pipeline: true,
      // Pinned rather than assumed: the event store starts transactions without naming the
      // level (one statement instead of two) and relies on READ COMMITTED (see EventStore.transaction).
      options: [
        '-c default_transaction_isolation=read\\ committed',
        ...(options.planCacheMode ? [`-c plan_cache_mode=${options.planCacheMode}`] : []),
      ].join(' '),
    },
  });
}

/** Connects, retrying while Postgres is not answering yet, for at most `deadlineMs`. */
export async function connectDatabase(
  dataSource: DataSource,
  deadlineMs: number,
  logger: Logger,
): Promise<void> {
  await retryUntil('postgres', deadlineMs, logger, () => dataSource.initialize());
}

/**
 * Applies pending migrations of one schema. An advisory lock keyed on the schema makes
 * concurrent starts of several replicas take turns instead of racing on DDL.
 */
export async function migrateSchema(dataSource: DataSource, schema: string): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock(hashtext($1))', [`migrate:${schema}`]);
    try {
      await runner.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      return applied.map((migration) => migration.name);
    } finally {
      await runner.query('SELECT pg_advisory_unlock(hashtext($1))', [`migrate:${schema}`]);
    }
  } finally {
    await runner.release();
  }
}

export function quoteIdentifier(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe SQL identifier: ${name}`);
  return `"${name}"`;
}

/** True when Postgres answers a trivial query within the timeout. */
export async function pingDatabase(dataSource: DataSource, timeoutMs: number): Promise<boolean> {
  if (!dataSource.isInitialized) return false;
  try {
    await withTimeout(dataSource.query('SELECT 1'), timeoutMs);
    return true;
  } catch {
    return false;
  }
}

export function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
