import { randomUUID } from 'node:crypto';
import { EventStore, projectionTarget, type RecordedEvent } from '@pf/event-store';
import { createTestDatabase, type TestDatabase } from '@pf/testing';
import { DataSource } from 'typeorm';
import { casinoProjection } from './ledger-projection.js';
import { CASINO_SCHEMA, casinoMigrations } from './migrations.js';

/** The projection's own failure paths, on a migrated casino schema (real Postgres, pipeline mode). */
describe('casino ledger projection (real Postgres)', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let store: EventStore;
  const target = projectionTarget(CASINO_SCHEMA);

  /** A transfer between two agents that were never registered (no balance rows). */
  const orphanTransfer = (position: number): RecordedEvent => ({
    globalPosition: position,
    transactionId: '1',
    streamId: `op-t-${position}`,
    streamVersion: 1,
    eventId: randomUUID(),
    type: 'funds_transferred',
    data: { transferId: `t-${position}`, from: 'world', to: 'ag_00000000abcd', amountMicros: '5', reason: 'deposit' },
    metadata: { service: 'casino' },
    recordedAt: new Date(),
  });
  const entries = async () => Number((await dataSource.query('SELECT count(*)::int AS n FROM casino.ledger_entries'))[0].n);

  beforeAll(async () => {
    database = await createTestDatabase('ledgerproj');
    dataSource = new DataSource({ type: 'postgres', url: database.url, schema: CASINO_SCHEMA, migrations: casinoMigrations, extra: { max: 2, pipeline: true } });
    await dataSource.initialize();
    await dataSource.query(`CREATE SCHEMA ${CASINO_SCHEMA}`);
    await dataSource.runMigrations({ transaction: 'each' });
    store = new EventStore({ dataSource, schema: CASINO_SCHEMA, inlineProjections: [casinoProjection] });
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  it('apply refuses an event for an account without a balance row, naming it, and writes nothing', async () => {
    const runner = dataSource.createQueryRunner();
    await runner.startTransaction();
    try {
      await expect(casinoProjection.apply(runner, [orphanTransfer(1)], target)).rejects.toThrow('ledger projection: no balance row for ag_00000000abcd');
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
    expect(await entries()).toBe(0);
  });

  it('the pipelined statements fail the same way, and the COMMIT sent with them rolls back', async () => {
    const [transaction] = await store.beginPipelined([]);
    await expect(transaction.commit(store.inlineProjectionStatements([orphanTransfer(2)]))).rejects.toThrow('no balance row for ag_00000000abcd');
    expect(await entries()).toBe(0);
  });
});
