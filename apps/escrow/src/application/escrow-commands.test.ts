import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createProjectionTables, EventStore, projectionTarget } from '@pf/event-store';
import { countTraffic, createTestDatabase, type TestDatabase } from '@pf/testing';
import { escrowDecider, type EscrowPolicy, type OpenEscrow } from '../domain/escrow.js';
import { encodeEscrowEvent } from '../infrastructure/escrow-codec.js';
import { escrowProjection } from '../infrastructure/escrow-projection.js';
import { EscrowRepository } from '../infrastructure/escrow-repository.js';
import { ESCROW_ROW_COLUMNS, type EscrowRow } from '../infrastructure/escrow-row.js';
import { ESCROW_SCHEMA, escrowMigrations } from '../infrastructure/migrations.js';
import { EscrowCommands } from './escrow-commands.js';

const creator = 'ag_00000000000a';
const worker = 'ag_00000000000b';
const policy: EscrowPolicy = {
  commissionBps: 100,
  minTimeoutMs: 60_000,
  maxTimeoutMs: 720 * 3_600_000,
  minAmountMicros: 100_000n,
};
const open = (escrowId: string): OpenEscrow => ({
  kind: 'open',
  escrowId,
  creatorId: creator,
  counterpartyId: worker,
  amountMicros: 5_000_000n,
  description: 'count the round trips',
  timeoutMs: 4 * 3_600_000,
  referrerId: null,
  policy,
});

/** A fresh database with the escrow schema migrated, on a pool of `max` connections. */
async function migratedEscrowDatabase(
  label: string,
  max: number,
  /** pg pipeline mode, as the services run (statements issued together share one write). */
  pipeline = false,
): Promise<{ database: TestDatabase; dataSource: DataSource }> {
  const database = await createTestDatabase(label);
  const dataSource = new DataSource({
    type: 'postgres',
    url: database.url,
    schema: ESCROW_SCHEMA,
    migrations: escrowMigrations,
    extra: { max, pipeline },
  });
  await dataSource.initialize();
  await dataSource.query(`CREATE SCHEMA ${ESCROW_SCHEMA}`);
  await dataSource.runMigrations({ transaction: 'each' });
  return { database, dataSource };
}

/**
 * The escrow commands on real Postgres, counting the statements each sends, BEGIN and COMMIT
 * included, and the round trips (statements issued together travel in one write: pipeline mode,
 * as the services run). Before the pipeline (EscrowRepository's own loop) a lifecycle cost
 * create 4, hold 5, complete 6 and release 7 (22 statements, each its own round trip), a
 * repeated release 4; on the CommandPipeline one statement at a time 4, 4, 5, 6 (19) and 3.
 */
/** What ops replay does (fresh tables, the whole log applied in batches) gives the live tables. */
async function expectRebuildToEqualLive(
  dataSource: DataSource,
  store: EventStore,
  live: EscrowRow[],
  liveDeadlines: unknown[],
): Promise<void> {
  const target = projectionTarget(ESCROW_SCHEMA, '_rebuild');
  await createProjectionTables(dataSource, escrowProjection, target);
  // readAll stops at the oldest transaction still running in the cluster (the shared Postgres
  // runs other tests): wait until it hands out every event written here.
  const [{ count }] = await dataSource.query(`SELECT count(*)::int AS count FROM escrow.events`);
  let events = await store.readAll({ limit: 1_000 });
  for (let waited = 0; events.length < count && waited < 200; waited += 1) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    events = await store.readAll({ limit: 1_000 });
  }
  expect(events).toHaveLength(count);
  await store.transaction(async (runner) => {
    for (let start = 0; start < events.length; start += 5)
      await escrowProjection.apply(runner, events.slice(start, start + 5), target);
  });
  const rebuilt = await dataSource.query(
    `SELECT ${ESCROW_ROW_COLUMNS}, position FROM escrow.escrows_rebuild ORDER BY escrow_id`,
  );
  expect(rebuilt).toEqual(live);
  expect(await dataSource.query(`SELECT * FROM escrow.deadlines_rebuild ORDER BY escrow_id`)).toEqual(
    liveDeadlines,
  );
}

describe('escrow commands on the pipeline', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let store: EventStore;
  let commands: EscrowCommands;
  let countOn: ReturnType<typeof countTraffic>;

  beforeAll(async () => {
    ({ database, dataSource } = await migratedEscrowDatabase('escrowcommands', 2, true));
    // Every statement sent on a transaction's connection (the pipelined path writes to the pg
    // client directly); statements issued in one tick share one write and one round trip.
    countOn = countTraffic(dataSource, 3);
    store = new EventStore({
      dataSource,
      schema: ESCROW_SCHEMA,
      inlineProjections: [escrowProjection],
    });
    commands = new EscrowCommands(new EscrowRepository(store, 5_000), { ESCROW_GROUP_COMMIT_BATCHES: 0 });
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  const counted = async <T>(
    run: () => Promise<T>,
  ): Promise<{ result: T; statements: number; roundTrips: number }> => {
    const { result, statements, roundTrips } = await countOn(run);
    return { result, statements: statements.length, roundTrips };
  };
  const rowOfTable = async (escrowId: string): Promise<EscrowRow> =>
    (
      await dataSource.query(`SELECT ${ESCROW_ROW_COLUMNS} FROM escrow.escrows WHERE escrow_id = $1`, [
        escrowId,
      ])
    )[0];

  it('given a lifecycle create → hold → complete → release, when each command runs, then each takes two round trips and replies with the row it wrote', async () => {
    const escrowId = 'esc_00000000000000a1';
    const create = await counted(() => commands.execute(escrowId, open(escrowId), { freshId: true }));
    const hold = await counted(() =>
      commands.execute(escrowId, { kind: 'record_hold', outcome: 'held' }, { knownRow: create.result.row }),
    );
    const complete = await counted(() =>
      commands.execute(
        escrowId,
        { kind: 'complete', actorId: worker, resultSummary: 'done' },
        { commandId: 'complete-1' },
      ),
    );
    const release = await counted(() =>
      commands.execute(escrowId, { kind: 'release', actorId: creator }, { commandId: 'release-1' }),
    );
    const repeat = await counted(() =>
      commands.execute(escrowId, { kind: 'release', actorId: creator }, { commandId: 'release-1' }),
    );

    // Round trip 1: BEGIN, now(); round trip 2: append, row upsert, COMMIT.
    expect(create).toMatchObject({ statements: 5, roundTrips: 2 });
    // On the row create wrote: no lock.
    expect(hold).toMatchObject({ statements: 5, roundTrips: 2 });
    // BEGIN, now(), lock + replay check; append, upsert, COMMIT.
    expect(complete).toMatchObject({ statements: 6, roundTrips: 2 });
    // … and the settlement outbox row.
    expect(release).toMatchObject({ statements: 7, roundTrips: 2 });
    // BEGIN, now(), lock + replay check (found); ROLLBACK.
    expect(repeat).toMatchObject({ statements: 4, roundTrips: 2 });
    expect(repeat.result.replayed).toBe(true);

    const row = await rowOfTable(escrowId);
    expect(release.result.row).toEqual(row);
    expect(row).toMatchObject({ status: 'released', version: 4, commission_taken_micros: '50000' });
    expect(row.auto_release_at!.getTime()).toBe(row.funded_at!.getTime() + 4 * 3_600_000);
    const deadlines = await dataSource.query(`SELECT * FROM escrow.deadlines WHERE escrow_id = $1`, [
      escrowId,
    ]);
    expect(deadlines).toEqual([]);
    const settlements = await dataSource.query(`SELECT kind FROM escrow.settlements WHERE escrow_id = $1`, [
      escrowId,
    ]);
    expect(settlements).toEqual([{ kind: 'post' }]);
  });

  it('given a stale known row (the recovery sweep funded the escrow meanwhile), when the hold is recorded, then the retry locks and nothing is decided twice', async () => {
    const escrowId = 'esc_00000000000000a2';
    const create = await commands.execute(escrowId, open(escrowId), { freshId: true });
    await commands.execute(escrowId, { kind: 'record_hold', outcome: 'held' });
    const late = await commands.execute(
      escrowId,
      { kind: 'record_hold', outcome: 'held' },
      { knownRow: create.row },
    );
    expect(late.events).toEqual([]);
    expect(late.row).toMatchObject({ status: 'funded', version: 2 });
    const deadlines = await dataSource.query(`SELECT due_at FROM escrow.deadlines WHERE escrow_id = $1`, [
      escrowId,
    ]);
    expect(deadlines).toEqual([{ due_at: late.row!.auto_release_at }]);
  });

  it('given a command that ran already, when it is sent again concurrently, then the repeats are answered as replays', async () => {
    const escrowId = 'esc_00000000000000a3';
    const create = await commands.execute(escrowId, open(escrowId), { freshId: true });
    await commands.execute(escrowId, { kind: 'record_hold', outcome: 'held' }, { knownRow: create.row });
    const outcomes = await Promise.all(
      Array.from({ length: 4 }, () =>
        commands.execute(escrowId, { kind: 'decline', actorId: worker }, { commandId: 'decline-1' }),
      ),
    );
    expect(outcomes.filter((outcome) => !outcome.replayed)).toHaveLength(1);
    expect(outcomes.every((outcome) => outcome.row?.status === 'refunded')).toBe(true);
    const events = await dataSource.query(`SELECT type FROM escrow.events WHERE stream_id = $1`, [
      `escrow-${escrowId}`,
    ]);
    expect(events.map((event: { type: string }) => event.type)).toEqual(['opened', 'funded', 'declined']);
  });
  it('given escrows written through the pipelined path (milestones, a dispute, a cancel request among them), when the log is rebuilt, then the tables are the live ones', async () => {
    const withMilestones = 'esc_00000000000000c1';
    const created = await commands.execute(
      withMilestones,
      {
        ...open(withMilestones),
        milestones: [
          { description: 'first', amountMicros: 2_000_000n },
          { description: 'second', amountMicros: 3_000_000n },
        ],
      },
      { freshId: true },
    );
    await commands.execute(
      withMilestones,
      { kind: 'record_hold', outcome: 'held' },
      { knownRow: created.row },
    );
    await commands.execute(
      withMilestones,
      { kind: 'complete', actorId: worker, resultSummary: 'part one', milestone: 0 },
      { commandId: 'm-complete' },
    );
    const released = await commands.execute(
      withMilestones,
      { kind: 'release', actorId: creator, milestone: 0 },
      { commandId: 'm-release' },
    );
    expect(released.settlement).toMatchObject({ kind: 'post', partId: expect.any(String) });
    for (const [escrowId, command] of [
      ['esc_00000000000000c2', { kind: 'dispute', actorId: creator, reason: 'silent' }],
      ['esc_00000000000000c3', { kind: 'request_cancel', actorId: creator }],
    ] as const) {
      const row = (await commands.execute(escrowId, open(escrowId), { freshId: true })).row;
      await commands.execute(escrowId, { kind: 'record_hold', outcome: 'held' }, { knownRow: row });
      await commands.execute(escrowId, command, { commandId: `${escrowId}-2` });
    }

    const live: EscrowRow[] = await dataSource.query(
      `SELECT ${ESCROW_ROW_COLUMNS}, position FROM escrow.escrows ORDER BY escrow_id`,
    );
    expect(live.find((row) => row.escrow_id === withMilestones)!.milestones).not.toBeNull();
    expect(live.find((row) => row.escrow_id === 'esc_00000000000000c2')!.status).toBe('disputed');
    const liveDeadlines = await dataSource.query(`SELECT * FROM escrow.deadlines ORDER BY escrow_id`);
    expect(liveDeadlines.length).toBeGreaterThan(0);
    await expectRebuildToEqualLive(dataSource, store, live, liveDeadlines);
  });
  it("given the projection told a time other than the transaction's (the events' recorded time), when its statement runs, then the transaction fails and writes nothing", async () => {
    const escrowId = 'esc_00000000000000d1';
    const stream = `escrow-${escrowId}`;
    const events = escrowDecider.decide(open(escrowId), escrowDecider.initialState());
    const append = store.prepareAppendMany([
      {
        streamId: stream,
        expectedVersion: 0,
        events: events.map((event) => ({ eventId: randomUUID(), ...encodeEscrowEvent(event) })),
      },
    ])!;
    const [transaction] = await store.beginPipelined([]);
    await expect(
      transaction.commit([
        append.statement,
        ...store.inlineProjectionStatements(append.pending, {
          transactionTime: new Date(Date.now() - 60_000),
          loaded: new Map([[stream, undefined]]),
        }),
      ]),
    ).rejects.toThrow(/is not in the log at this transaction's time/);
    expect(await store.readStream(stream)).toEqual([]);
    expect(await rowOfTable(escrowId)).toBeUndefined();
  });
});

describe('escrow commands with group commit, and a rebuild of what they wrote', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let store: EventStore;
  let commands: EscrowCommands;

  beforeAll(async () => {
    ({ database, dataSource } = await migratedEscrowDatabase('escrowgroup', 3));
    store = new EventStore({ dataSource, schema: ESCROW_SCHEMA, inlineProjections: [escrowProjection] });
    commands = new EscrowCommands(new EscrowRepository(store, 5_000), { ESCROW_GROUP_COMMIT_BATCHES: 1 });
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  it('given commands batched in one transaction, one of them refused, when they commit, then the others are written and a rebuild from the log gives the same tables', async () => {
    const ids = Array.from({ length: 6 }, (_, index) => `esc_00000000000000b${index}`);
    const created = await Promise.all(ids.map((id) => commands.execute(id, open(id), { freshId: true })));
    await Promise.all(
      ids.map((id, index) =>
        commands.execute(id, { kind: 'record_hold', outcome: 'held' }, { knownRow: created[index]!.row }),
      ),
    );
    const outcomes = await Promise.allSettled([
      ...ids.map((id, index) =>
        commands.execute(
          id,
          { kind: 'complete', actorId: worker, resultSummary: `part ${index}` },
          { commandId: `complete-${id}` },
        ),
      ),
      // Refused (only the counterparty completes); the others of its batch commit.
      commands.execute(ids[0]!, { kind: 'decline', actorId: creator }, { commandId: 'refused' }),
      // Two commands on one escrow in flight at once.
      commands.execute(
        ids[1]!,
        { kind: 'dispute', actorId: creator, reason: 'late' },
        { commandId: 'dispute' },
      ),
    ]);
    expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toHaveLength(1);
    await commands.execute(ids[2]!, { kind: 'release', actorId: creator }, { commandId: 'release' });

    const live: EscrowRow[] = await dataSource.query(
      `SELECT ${ESCROW_ROW_COLUMNS}, position FROM escrow.escrows ORDER BY escrow_id`,
    );
    expect(live.map((row) => row.status)).toEqual([
      'completed',
      'disputed',
      'released',
      'completed',
      'completed',
      'completed',
    ]);
    const liveDeadlines = await dataSource.query(`SELECT * FROM escrow.deadlines ORDER BY escrow_id`);
    expect(liveDeadlines.map((row: { escrow_id: string }) => row.escrow_id)).toEqual([
      ids[0],
      ids[3],
      ids[4],
      ids[5],
    ]);

    await expectRebuildToEqualLive(dataSource, store, live, liveDeadlines);
  });
});
