// Shared setup of the ledger's tests on real Postgres (not exported from the app): a fresh
// database with casino's schema migrated, its event store with the ledger projection, and a
// LedgerService on it with one batch in flight.
import type { OperationReply } from '@pf/contracts';
import { EventStore } from '@pf/event-store';
import { createDataSource, createLogger } from '@pf/platform';
import { createTestDatabase, type TestDatabase } from '@pf/testing';
import type { DataSource } from 'typeorm';
import type { CasinoConfig } from '../config.js';
import { SystemAccount } from '../domain/accounts.js';
import { casinoProjection } from '../infrastructure/ledger-projection.js';
import { CASINO_SCHEMA, casinoMigrations } from '../infrastructure/migrations.js';
import { LedgerService } from './ledger.service.js';

export interface LedgerHarness {
  database: TestDatabase;
  dataSource: DataSource;
  store: EventStore;
  ledger: LedgerService;
  /** A deposit from `world` to the faucet treasury (accounts every fresh ledger has). */
  deposit(transferId: string, amountMicros?: bigint): Promise<OperationReply>;
  close(): Promise<void>;
}

export async function openLedgerHarness(label: string): Promise<LedgerHarness> {
  const database = await createTestDatabase(label.replace(/-/g, ''));
  const dataSource = createDataSource({
    url: database.url,
    schema: CASINO_SCHEMA,
    poolMax: 4,
    applicationName: `${label}-test`,
    migrations: casinoMigrations,
    logger: createLogger(`${label}-test`, 'warn'),
  });
  await dataSource.initialize();
  await dataSource.query(`CREATE SCHEMA ${CASINO_SCHEMA}`);
  await dataSource.runMigrations({ transaction: 'each' });
  const store = new EventStore({ dataSource, schema: CASINO_SCHEMA, inlineProjections: [casinoProjection] });
  const ledger = new LedgerService(store, { LEDGER_BATCHES_IN_FLIGHT: 1, DB_POOL_MAX: 4 } as CasinoConfig);
  return {
    database,
    dataSource,
    store,
    ledger,
    deposit: (transferId, amountMicros = 1n) =>
      ledger.execute(
        {
          kind: 'transfer',
          transferId,
          from: SystemAccount.world,
          to: SystemAccount.faucetTreasury,
          amountMicros,
          reason: 'deposit',
        },
        { service: 'test' },
      ),
    close: async () => {
      await ledger.onApplicationShutdown();
      await dataSource.destroy();
      await database.drop();
    },
  };
}
