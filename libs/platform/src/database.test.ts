import { pino } from 'pino';
import { createTestDatabase, type TestDatabase } from '@pf/testing';
import { createDataSource } from './database.js';

/** The settings every service connection starts with, read back from real Postgres. */
describe('createDataSource', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase('platformdb');
  });

  afterAll(async () => {
    await database?.drop();
  });

  async function settingsOf(planCacheMode?: 'force_generic_plan'): Promise<Record<string, string>> {
    const dataSource = createDataSource({
      url: database.url,
      schema: 'public',
      poolMax: 1,
      applicationName: 'platform-test',
      migrations: [],
      logger: pino({ level: 'silent' }),
      planCacheMode,
    });
    await dataSource.initialize();
    try {
      const rows: Array<{ name: string; setting: string }> = await dataSource.query(
        `SELECT name, setting FROM pg_settings WHERE name IN ('plan_cache_mode', 'default_transaction_isolation')`,
      );
      return Object.fromEntries(rows.map((row) => [row.name, row.setting]));
    } finally {
      await dataSource.destroy();
    }
  }

  it('given no plan cache mode, then connections keep Postgres default and READ COMMITTED', async () => {
    expect(await settingsOf()).toEqual({
      plan_cache_mode: 'auto',
      default_transaction_isolation: 'read committed',
    });
  });

  it('given force_generic_plan (escrow), then every connection plans its prepared statements once', async () => {
    expect(await settingsOf('force_generic_plan')).toEqual({
      plan_cache_mode: 'force_generic_plan',
      default_transaction_isolation: 'read committed',
    });
  });
});
