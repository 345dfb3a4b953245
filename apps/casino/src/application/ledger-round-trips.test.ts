import { EventStore, PipelinedTransaction } from '@pf/event-store';
import { createDataSource, createLogger } from '@pf/platform';
import { createTestDatabase, type TestDatabase } from '@pf/testing';
import type { DataSource } from 'typeorm';
import { SystemAccount } from '../domain/accounts.js';
import { casinoProjection } from '../infrastructure/ledger-projection.js';
import { CASINO_SCHEMA, casinoMigrations } from '../infrastructure/migrations.js';
import type { CasinoConfig } from '../config.js';
import { LedgerService } from './ledger.service.js';

/**
 * What a ledger batch costs in round trips on the pipeline's batch strategy (ADR 0008, 0021):
 * ONE pipelined round trip when this process's cache knows the state (BEGIN, check, append,
 * projection, COMMIT), two when it reads first (BEGIN + load; append, projection, COMMIT).
 * Counted at PipelinedTransaction, through which every batch statement travels.
 */
describe('ledger batch round trips (real Postgres)', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let ledger: LedgerService;
  const trips: string[] = [];
  const restore: Array<() => void> = [];

  const deposit = (transferId: string, amountMicros = 1n) =>
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
    );

  beforeAll(async () => {
    database = await createTestDatabase('ledgertrips');
    dataSource = createDataSource({
      url: database.url,
      schema: CASINO_SCHEMA,
      poolMax: 4,
      applicationName: 'ledger-round-trips-test',
      migrations: casinoMigrations,
      logger: createLogger('ledger-round-trips-test', 'warn'),
    });
    await dataSource.initialize();
    await dataSource.query(`CREATE SCHEMA ${CASINO_SCHEMA}`);
    await dataSource.runMigrations({ transaction: 'each' });
    const store = new EventStore({
      dataSource,
      schema: CASINO_SCHEMA,
      inlineProjections: [casinoProjection],
    });
    ledger = new LedgerService(store, { LEDGER_BATCHES_IN_FLIGHT: 1, DB_POOL_MAX: 4 } as CasinoConfig);
    // Count the round trips where every batch statement travels (restored after the suite).
    const transaction = PipelinedTransaction as unknown as Record<string, (...args: unknown[]) => unknown>;
    const prototype = PipelinedTransaction.prototype as unknown as Record<
      string,
      (...args: unknown[]) => unknown
    >;
    for (const [target, name] of [
      [transaction, 'run'],
      [transaction, 'begin'],
      [prototype, 'commit'],
      [prototype, 'send'],
    ] as const) {
      const original = target[name]!;
      restore.push(() => (target[name] = original));
      target[name] = function (this: unknown, ...args: unknown[]) {
        trips.push(name);
        return original.apply(this, args);
      };
    }
  });

  afterAll(async () => {
    for (const undo of restore) undo();
    await ledger?.onApplicationShutdown();
    await dataSource?.destroy();
    await database?.drop();
  });

  it('reads first when the cache does not know the accounts (two round trips), then decides on the cache (one)', async () => {
    trips.length = 0;
    await deposit('trips-1');
    expect(trips).toEqual(['begin', 'commit']);
    trips.length = 0;
    await deposit('trips-2');
    expect(trips).toEqual(['run']);
    trips.length = 0;
    // A batch of several commands on known accounts: still one round trip.
    await Promise.all(['trips-3', 'trips-4', 'trips-5'].map((id) => deposit(id)));
    expect(trips).toEqual(['run']);
  });

  it('a stale guess costs one failed round trip, then the read (two)', async () => {
    await deposit('stale-1');
    // Another writer moves the treasury's balance row behind the cache's back.
    await dataSource.query(
      `UPDATE ${CASINO_SCHEMA}.accounts SET available_micros = available_micros + 5 WHERE account_id = $1`,
      [SystemAccount.faucetTreasury],
    );
    trips.length = 0;
    await deposit('stale-2');
    expect(trips).toEqual(['run', 'begin', 'commit']);
    // Known again: one round trip.
    trips.length = 0;
    await deposit('stale-3');
    expect(trips).toEqual(['run']);
  });
});
