import { DataSource, type QueryRunner } from 'typeorm';
import { createProjectionTables, EventStore, projectionTarget } from '@pf/event-store';
import { createTestDatabase, type TestDatabase } from '@pf/testing';
import type { EscrowPolicy, OpenEscrow } from '../domain/escrow.js';
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
): Promise<{ database: TestDatabase; dataSource: DataSource }> {
  const database = await createTestDatabase(label);
  const dataSource = new DataSource({
    type: 'postgres',
    url: database.url,
    schema: ESCROW_SCHEMA,
    migrations: escrowMigrations,
    extra: { max },
  });
  await dataSource.initialize();
  await dataSource.query(`CREATE SCHEMA ${ESCROW_SCHEMA}`);
  await dataSource.runMigrations({ transaction: 'each' });
  return { database, dataSource };
}

/**
 * The escrow commands on real Postgres, counting the statements (round trips) each sends,
 * BEGIN and COMMIT included. Before the pipeline (EscrowRepository's own loop) a lifecycle cost
 * create 4, hold 5, complete 6 and release 7 (22), a repeated release 4.
 */
describe('escrow commands on the pipeline', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let commands: EscrowCommands;
  const sent: string[] = [];

  beforeAll(async () => {
    ({ database, dataSource } = await migratedEscrowDatabase('escrowcommands', 2));
    // Every statement a transaction's runner sends (TypeORM's BEGIN and COMMIT go through `query` too).
    const createRunner = dataSource.createQueryRunner.bind(dataSource);
    dataSource.createQueryRunner = (...args: Parameters<DataSource['createQueryRunner']>): QueryRunner => {
      const runner = createRunner(...args);
      const query = runner.query.bind(runner);
      runner.query = ((sql: string, parameters?: unknown[]) => {
        sent.push(String(sql).trim().split(/\s+/).slice(0, 3).join(' '));
        return query(sql, parameters);
      }) as QueryRunner['query'];
      return runner;
    };
    const store = new EventStore({
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

  const counted = async <T>(run: () => Promise<T>): Promise<{ result: T; statements: number }> => {
    sent.length = 0;
    const result = await run();
    return { result, statements: sent.length };
  };
  const rowOfTable = async (escrowId: string): Promise<EscrowRow> =>
    (
      await dataSource.query(`SELECT ${ESCROW_ROW_COLUMNS} FROM escrow.escrows WHERE escrow_id = $1`, [
        escrowId,
      ])
    )[0];

  it('given a lifecycle create → hold → complete → release, when each command runs, then it sends fewer statements than before and replies with the row it wrote', async () => {
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

    // BEGIN, append, row upsert, COMMIT.
    expect(create.statements).toBe(4);
    // On the row create wrote: no lock.
    expect(hold.statements).toBe(4);
    // BEGIN, lock + replay check, append, upsert, COMMIT.
    expect(complete.statements).toBe(5);
    // … and the settlement outbox row.
    expect(release.statements).toBe(6);
    // BEGIN, lock + replay check (found), COMMIT.
    expect(repeat.statements).toBe(3);
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

    // What ops replay does: fresh tables, the whole log applied in batches.
    const target = projectionTarget(ESCROW_SCHEMA, '_rebuild');
    await createProjectionTables(dataSource, escrowProjection, target);
    const events = await store.readAll({ limit: 1_000 });
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
  });
});
