import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Server-level URL the harness uses to create and drop per-run databases. */
export function adminDatabaseUrl(): string {
  return process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A test run's databases and streams left after this long belong to a run that crashed before its cleanup. */
export const STALE_AFTER_SECONDS = 6 * 3600;

/**
 * A fresh database for one test run, so parallel suites and reruns never share tables.
 * Names carry their creation time; databases left behind by crashed runs are dropped once stale.
 */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const safeLabel =
    label
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .slice(0, 20) || 'run';
  const name = `t_${safeLabel}_${Math.floor(Date.now() / 1000)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminDatabaseUrl() });
  await admin.connect();
  try {
    await dropStaleDatabases(admin);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminDatabaseUrl());
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: async () => {
      // KEEP_TEST_DATABASES=1 leaves the database behind for a post-mortem (stale ones are swept later).
      if (process.env.KEEP_TEST_DATABASES === '1') return;
      const client = new pg.Client({ connectionString: adminDatabaseUrl() });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

async function dropStaleDatabases(admin: pg.Client): Promise<void> {
  const { rows } = await admin.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE datname ~ '^t_[a-z0-9]+_[0-9]+_[0-9a-f]{8}$'`,
  );
  const nowSeconds = Date.now() / 1000;
  for (const { datname } of rows) {
    const createdSeconds = Number(datname.split('_').at(-2));
    if (nowSeconds - createdSeconds > STALE_AFTER_SECONDS) {
      await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch(() => undefined);
    }
  }
}
