import { randomUUID } from 'node:crypto';
import {
  createProjectionTables,
  dropProjectionTables,
  EventStore,
  projectionTarget,
  type NewEvent,
  type RecordedEvent,
} from '@pf/event-store';
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
    data: {
      transferId: `t-${position}`,
      from: 'world',
      to: 'ag_00000000abcd',
      amountMicros: '5',
      reason: 'deposit',
    },
    metadata: { service: 'casino' },
    recordedAt: new Date(),
  });
  const entries = async () =>
    Number((await dataSource.query('SELECT count(*)::int AS n FROM casino.ledger_entries'))[0].n);

  beforeAll(async () => {
    database = await createTestDatabase('ledgerproj');
    dataSource = new DataSource({
      type: 'postgres',
      url: database.url,
      schema: CASINO_SCHEMA,
      migrations: casinoMigrations,
      extra: { max: 2, pipeline: true },
    });
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
      await expect(casinoProjection.apply(runner, [orphanTransfer(1)], target)).rejects.toThrow(
        'ledger projection: no balance row for ag_00000000abcd',
      );
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
    expect(await entries()).toBe(0);
  });

  it('the pipelined statements fail the same way, and the COMMIT sent with them rolls back', async () => {
    const [transaction] = await store.beginPipelined([]);
    await expect(transaction.commit(store.inlineProjectionStatements([orphanTransfer(2)]))).rejects.toThrow(
      'no balance row for ag_00000000abcd',
    );
    expect(await entries()).toBe(0);
  });

  it('the pipelined statements refuse an event that is not in the log', async () => {
    const agent = 'ag_0000000000f1';
    await dataSource.query(`INSERT INTO casino.accounts (account_id) VALUES ($1)`, [agent]);
    const [transaction] = await store.beginPipelined([]);
    await expect(
      transaction.commit(
        store.inlineProjectionStatements([
          { ...orphanTransfer(3), data: { ...orphanTransfer(3).data, to: agent } },
        ]),
      ),
    ).rejects.toThrow('an event of the batch is not in the log');
    expect(await entries()).toBe(0);
  });

  it('append, pipelined statements and COMMIT in one round trip write exactly what apply writes from the log', async () => {
    const [alice, bob] = ['ag_0000000000a1', 'ag_0000000000b2'];
    await dataSource.query(`INSERT INTO casino.accounts (account_id) VALUES ($1), ($2)`, [alice, bob]);
    const op = (
      id: string,
      type: string,
      data: Record<string, unknown>,
    ): { streamId: string; expectedVersion: number; events: NewEvent[] } => ({
      streamId: `op-${id}`,
      expectedVersion: 0,
      events: [{ eventId: randomUUID(), type, data, metadata: { service: 'test' } }],
    });
    const batch = [
      op('dep-a', 'funds_transferred', {
        transferId: 'dep-a',
        from: 'world',
        to: alice,
        amountMicros: '5000000',
        reason: 'deposit',
      }),
      op('h-1', 'hold_placed', { holdId: 'h-1', from: alice, amountMicros: '1250000', reason: 'escrow' }),
      op('t-1', 'funds_transferred', {
        transferId: 't-1',
        from: alice,
        to: bob,
        amountMicros: '333',
        reason: 'tab\there',
      }),
    ];
    const append = store.prepareAppendMany(batch)!;
    const [transaction] = await store.beginPipelined([]);
    const [appended] = await transaction.commit([
      append.statement,
      ...store.inlineProjectionStatements(append.pending),
    ]);
    const recorded = append.recorded(appended!.rows as never);
    // The same events applied from the log, as a replay does, into a fresh target.
    const shadow = projectionTarget(CASINO_SCHEMA, '_pipe_check');
    await createProjectionTables(dataSource, casinoProjection, shadow);
    try {
      await dataSource.query(`INSERT INTO ${shadow.table('accounts')} (account_id) VALUES ($1), ($2)`, [
        alice,
        bob,
      ]);
      const fromLog = [...(await store.readStreams(recorded.map((event) => event.streamId))).values()].flat();
      const runner = dataSource.createQueryRunner();
      await runner.startTransaction();
      await casinoProjection.apply(
        runner,
        fromLog.sort((a, b) => a.globalPosition - b.globalPosition),
        shadow,
      );
      await runner.commitTransaction();
      await runner.release();
      // Compared as Postgres has them (a JS Date would hide a microsecond difference in `at`).
      const columns =
        'position, account_id, operation_id, type, amount_micros, held_delta_micros, balance_after_micros, reason, service, counterparty, at::text AS at';
      const rowsOf = (table: string) =>
        dataSource.query(
          `SELECT ${columns} FROM ${table} WHERE account_id IN ($1, $2, 'world', 'escrow_holding') ORDER BY entry_id`,
          [alice, bob],
        );
      const live = await rowsOf('casino.ledger_entries');
      expect(live).toHaveLength(6);
      expect(live.map((row: { position: string }) => Number(row.position))).toEqual(
        [recorded[0]!, recorded[0]!, recorded[1]!, recorded[1]!, recorded[2]!, recorded[2]!].map(
          (e) => e.globalPosition,
        ),
      );
      expect(live).toEqual(await rowsOf(shadow.table('ledger_entries')));
      const balances = (table: string) =>
        dataSource.query(`SELECT * FROM ${table} WHERE account_id IN ($1, $2) ORDER BY account_id`, [
          alice,
          bob,
        ]);
      expect(await balances('casino.accounts')).toEqual(await balances(shadow.table('accounts')));
    } finally {
      await dropProjectionTables(dataSource, casinoProjection, shadow);
    }
  });

  it("an operator split: the creator's returned share is a refund, not earnings; the worker's payout is", async () => {
    const [creator, worker] = ['ag_0000000000c5', 'ag_0000000000d6'];
    await dataSource.query(`INSERT INTO casino.accounts (account_id) VALUES ($1), ($2)`, [creator, worker]);
    const at = new Date();
    const recorded = (position: number, type: string, data: Record<string, unknown>): RecordedEvent => ({
      globalPosition: position,
      transactionId: '1',
      streamId: `op-split-${position}`,
      streamVersion: 1,
      eventId: randomUUID(),
      type,
      data,
      metadata: { service: 'escrow' },
      recordedAt: at,
    });
    const events = [
      recorded(101, 'funds_transferred', {
        transferId: 'split-dep',
        from: 'world',
        to: creator,
        amountMicros: '10000000',
        reason: 'deposit',
      }),
      recorded(102, 'hold_placed', {
        holdId: 'split-1',
        from: creator,
        amountMicros: '10000000',
        reason: 'escrow',
      }),
      // A 50/50 split of $10 at 1%: the worker gets $4.95, the house $0.05, the creator $5 back.
      recorded(103, 'hold_posted', {
        holdId: 'split-1',
        from: creator,
        amountMicros: '10000000',
        splits: [
          { to: worker, amountMicros: '4950000', reason: 'payout' },
          { to: 'house_revenue', amountMicros: '50000', reason: 'commission' },
          { to: creator, amountMicros: '5000000', reason: 'refund' },
        ],
      }),
    ];
    const runner = dataSource.createQueryRunner();
    await runner.startTransaction();
    await casinoProjection.apply(runner, events, target);
    await runner.commitTransaction();
    await runner.release();
    const lifetime = async (account: string) =>
      (
        await dataSource.query(
          `SELECT available_micros, earned_micros, fees_micros FROM casino.accounts WHERE account_id = $1`,
          [account],
        )
      )[0];
    expect(await lifetime(creator)).toEqual({
      available_micros: '5000000',
      earned_micros: '0',
      fees_micros: '50000',
    });
    expect(await lifetime(worker)).toEqual({
      available_micros: '4950000',
      earned_micros: '4950000',
      fees_micros: '0',
    });
    const creatorEntries = await dataSource.query(
      `SELECT type, reason, amount_micros FROM casino.ledger_entries WHERE account_id = $1 AND operation_id = 'split-1' AND amount_micros <> 0`,
      [creator],
    );
    expect(creatorEntries).toEqual([
      { type: 'escrow_lock', reason: 'escrow', amount_micros: '-10000000' },
      { type: 'escrow_refund', reason: 'refund', amount_micros: '5000000' },
    ]);
  });
});
