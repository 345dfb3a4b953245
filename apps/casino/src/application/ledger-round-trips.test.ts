import { PipelinedTransaction } from '@pf/event-store';
import type { DataSource } from 'typeorm';
import { SystemAccount } from '../domain/accounts.js';
import { CASINO_SCHEMA } from '../infrastructure/migrations.js';
import { openLedgerHarness, type LedgerHarness } from './test-harness.js';

/**
 * What a ledger batch costs in round trips on the pipeline's batch strategy (ADR 0008, 0021):
 * ONE pipelined round trip when this process's cache knows the state (BEGIN, check, append,
 * projection, COMMIT), two when it reads first (BEGIN + load; append, projection, COMMIT).
 * Counted at PipelinedTransaction, through which every batch statement travels.
 */
describe('ledger batch round trips (real Postgres)', () => {
  let harness: LedgerHarness;
  let dataSource: DataSource;
  const trips: string[] = [];
  const restore: Array<() => void> = [];

  const deposit = (transferId: string) => harness.deposit(transferId);

  beforeAll(async () => {
    harness = await openLedgerHarness('ledger-round-trips');
    ({ dataSource } = harness);
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
    await harness?.close();
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
