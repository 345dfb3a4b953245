import { isDependencyFailure } from '@pf/contracts';
import type pg from 'pg';
import type { DataSource } from 'typeorm';
import { SystemAccount } from '../domain/accounts.js';
import { CASINO_SCHEMA } from '../infrastructure/migrations.js';
import { operationStream } from './ledger.service.js';
import { openLedgerHarness, type LedgerHarness } from './test-harness.js';

/**
 * A ledger batch whose connection is cut while Postgres commits it (real Postgres): the callers
 * are told the write may have happened (never refused, never decided again behind their back),
 * and their retries with the same transfer ids are answered from the one committed run.
 */
describe('ledger batch when the connection breaks during the COMMIT (real Postgres)', () => {
  let harness: LedgerHarness;

  beforeAll(async () => {
    harness = await openLedgerHarness('ledger-connection-loss');
    // While a row is in `slow_commit`, every appended event makes the COMMIT sleep (deferred).
    await harness.dataSource.query(`
      CREATE TABLE ${CASINO_SCHEMA}.slow_commit (on_ boolean);
      CREATE FUNCTION ${CASINO_SCHEMA}.sleep_at_commit() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN IF EXISTS (SELECT 1 FROM ${CASINO_SCHEMA}.slow_commit) THEN PERFORM pg_sleep(0.4); END IF; RETURN NULL; END $$;
      CREATE CONSTRAINT TRIGGER sleep_at_commit AFTER INSERT ON ${CASINO_SCHEMA}.events
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${CASINO_SCHEMA}.sleep_at_commit();`);
  });

  afterAll(async () => {
    await harness?.close();
  });

  const deposit = (transferId: string, amountMicros: bigint) => harness.deposit(transferId, amountMicros);

  const treasury = async (): Promise<bigint> => {
    const [row] = (await harness.dataSource.query(
      `SELECT available_micros::text AS available FROM ${CASINO_SCHEMA}.accounts WHERE account_id = $1`,
      [SystemAccount.faucetTreasury],
    )) as Array<{ available: string }>;
    return BigInt(row!.available);
  };

  it('given a batch cut while it commits, then both callers are told it may have happened and their retries are answered once', async () => {
    await deposit('cut-warm', 1n);
    const before = await treasury();
    await harness.dataSource.query(`INSERT INTO ${CASINO_SCHEMA}.slow_commit VALUES (true)`);
    const cut = new Promise((resolve) => setTimeout(resolve, 250)).then(() =>
      cutConnections(harness.dataSource),
    );
    const outcomes = await Promise.allSettled([deposit('cut-1', 10n), deposit('cut-2', 20n)]);
    await cut;
    await harness.dataSource.query(`DELETE FROM ${CASINO_SCHEMA}.slow_commit`);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect(isDependencyFailure((outcome as PromiseRejectedResult).reason)).toBe(true);
    }
    // The retries wait for the locks the cut transaction holds until its COMMIT is done.
    const retries = await Promise.all([deposit('cut-1', 10n), deposit('cut-2', 20n)]);
    expect(retries.map((reply) => reply.status)).toEqual(['transferred', 'transferred']);
    expect(await treasury()).toBe(before + 30n);
    const [{ events }] = (await harness.dataSource.query(
      `SELECT count(*)::int AS events FROM ${CASINO_SCHEMA}.events WHERE stream_id = ANY($1::text[])`,
      [[operationStream('cut-1'), operationStream('cut-2')]],
    )) as Array<{ events: number }>;
    expect(events).toBe(2);
  });
});

/** Cuts every connection of the data source on the client side (the server sees the socket close). */
function cutConnections(dataSource: DataSource): void {
  const pool = (dataSource.driver as unknown as { master: { _clients: pg.Client[] } }).master;
  for (const client of pool._clients)
    (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
}
