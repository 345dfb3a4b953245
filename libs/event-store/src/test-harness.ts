// Shared setup of this library's tests (not exported): a fresh database per test file with
// the event store migrated into a schema, as a service would have it.
import { createTestDatabase, type TestDatabase } from '@pf/testing';
import { DataSource } from 'typeorm';
import { EventStore, type EventStoreOptions } from './event-store.js';
import { eventStoreMigrations } from './migrations.js';
import { quoteIdentifier } from './sql.js';

export interface StoreHarness {
  database: TestDatabase;
  dataSource: DataSource;
  schema: string;
  store: EventStore;
  /** Another data source on the same database (e.g. a second "replica"). */
  openDataSource(poolMax: number): Promise<DataSource>;
  close(): Promise<void>;
}

export async function openStoreHarness(
  label: string,
  {
    schema = 'casino',
    poolMax = 4,
    storeOptions = {},
  }: { schema?: string; poolMax?: number; storeOptions?: Partial<EventStoreOptions> } = {},
): Promise<StoreHarness> {
  const database = await createTestDatabase(label);
  const opened: DataSource[] = [];
  const openDataSource = async (max: number) => {
    const dataSource = new DataSource({
      type: 'postgres',
      url: database.url,
      schema,
      migrations: eventStoreMigrations(schema),
      migrationsTableName: 'migrations',
      migrationsTransactionMode: 'each',
      synchronize: false,
      logging: false,
      // Pipeline mode as the services run it (libs/platform's createDataSource).
      extra: {
        max,
        application_name: `test-${label}`,
        statement_timeout: 30_000,
        connectionTimeoutMillis: 5_000,
        pipeline: true,
      },
    });
    await dataSource.initialize();
    opened.push(dataSource);
    return dataSource;
  };
  const dataSource = await openDataSource(poolMax);
  await dataSource.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
  await dataSource.runMigrations({ transaction: 'each' });
  const store = new EventStore({ dataSource, schema, ...storeOptions });
  return {
    database,
    dataSource,
    schema,
    store,
    openDataSource,
    close: async () => {
      await Promise.all(opened.map((source) => source.destroy().catch(() => undefined)));
      await database.drop();
    },
  };
}
