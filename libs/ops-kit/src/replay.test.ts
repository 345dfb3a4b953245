import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import {
  copyRow,
  createProjectionTables,
  EventStore,
  eventStoreMigrations,
  projectionTarget,
  type BulkLoadContext,
  type Projection,
} from '@pf/event-store';
import { createTestDatabase, sleep, type TestDatabase } from '@pf/testing';
import { ReplayEngine } from './replay.js';

const SCHEMA = 'toy';

/** A small inline projection with what real ones have: a checked balance, an identity column, a secondary index. */
const toyProjection: Projection = {
  name: 'toy_totals',
  tables: ['totals', 'entries'],
  createTables: (target) => [
    `CREATE TABLE ${target.table('totals')} (stream_id text PRIMARY KEY, amount bigint NOT NULL CHECK (amount >= 0), position bigint NOT NULL)`,
    `CREATE TABLE ${target.table('entries')} (entry_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, stream_id text NOT NULL, amount bigint NOT NULL, position bigint NOT NULL)`,
    `CREATE INDEX ON ${target.table('entries')} (stream_id)`,
  ],
  apply: async (runner, events, target) => {
    for (const event of events) {
      const amount = String(event.data.amount);
      await runner.query(
        `INSERT INTO ${target.table('totals')} AS t (stream_id, amount, position) VALUES ($1, $2, $3)
         ON CONFLICT (stream_id) DO UPDATE SET amount = t.amount + EXCLUDED.amount, position = EXCLUDED.position`,
        [event.streamId, amount, event.globalPosition],
      );
      await runner.query(
        `INSERT INTO ${target.table('entries')} (stream_id, amount, position) VALUES ($1, $2, $3)`,
        [event.streamId, amount, event.globalPosition],
      );
    }
  },
};

/** The same projection with a bulk load: totals kept in memory and written at the end, entries streamed by COPY. */
const bulkLoads: string[] = [];
const toyWithBulkLoad: Projection = {
  ...toyProjection,
  bulkLoad: async (context: BulkLoadContext) => {
    bulkLoads.push(context.target.suffix);
    const totals = new Map<string, { amount: bigint; position: number }>();
    const entries = await context.copy('entries', ['stream_id', 'amount', 'position']);
    return {
      apply: async (events) => {
        let rows = '';
        for (const event of events) {
          const amount = BigInt(String(event.data.amount));
          const total = totals.get(event.streamId) ?? { amount: 0n, position: 0 };
          totals.set(event.streamId, { amount: total.amount + amount, position: event.globalPosition });
          rows += copyRow([event.streamId, amount, event.globalPosition]);
        }
        await entries.write(rows);
      },
      finish: async () => {
        await entries.end();
        const out = await context.copy('totals', ['stream_id', 'amount', 'position']);
        await out.write(
          [...totals].map(([stream, total]) => copyRow([stream, total.amount, total.position])).join(''),
        );
        await out.end();
      },
    };
  },
};

describe('ReplayEngine (real Postgres)', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let store: EventStore;
  let engine: ReplayEngine;
  const progress: Array<[string, number, number]> = [];

  const add = (stream: string, amount: number) =>
    store.append(stream, 'any', [{ eventId: randomUUID(), type: 'added', data: { amount } }]);
  const totals = async (table: string) =>
    Object.fromEntries(
      (
        (await dataSource.query(
          `SELECT stream_id, amount::text FROM ${SCHEMA}.${table} ORDER BY stream_id`,
        )) as Array<{ stream_id: string; amount: string }>
      ).map((row) => [row.stream_id, row.amount]),
    );

  beforeAll(async () => {
    database = await createTestDatabase('opskit');
    dataSource = new DataSource({ type: 'postgres', url: database.url, extra: { max: 6 } });
    await dataSource.initialize();
    await dataSource.query(`CREATE SCHEMA ${SCHEMA}`);
    const runner = dataSource.createQueryRunner();
    for (const Migration of eventStoreMigrations(SCHEMA)) await new Migration().up(runner);
    await createProjectionTables(runner, toyProjection, projectionTarget(SCHEMA));
    await runner.release();
    store = new EventStore({ dataSource, schema: SCHEMA, inlineProjections: [toyProjection] });
    engine = new ReplayEngine({
      dataSource,
      schema: SCHEMA,
      projections: [toyProjection],
      batchSize: 7,
      onProgress: (phase, done, total) => progress.push([phase, done, total]),
    });
    for (let index = 0; index < 40; index += 1) await add(`s${index % 5}`, index + 1);
  }, 30_000);

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  it('replays into fresh tables equal to the live ones, reporting progress per batch', async () => {
    const goal = await engine.goalPosition({ kind: 'head' });
    const outcome = await engine.replay('_shadow', goal);
    expect(outcome.events).toBe(40);
    expect(progress.at(-1)).toEqual(['replay', 40, 40]);
    expect(progress.length).toBeGreaterThanOrEqual(6);
    expect((await engine.compare('_shadow', goal)).map((difference) => difference.count)).toEqual([0, 0]);
  });

  it('replays up to a position or a time', async () => {
    const [{ at }] = await dataSource.query(
      `SELECT recorded_at AS at FROM ${SCHEMA}.events WHERE global_position = 10`,
    );
    expect(await engine.goalPosition({ kind: 'position', position: 10 })).toBe(10);
    expect(await engine.goalPosition({ kind: 'position', position: 10_000 })).toBe(40);
    // Times are given to the millisecond; Postgres records microseconds.
    expect(
      await engine.goalPosition({ kind: 'time', at: new Date((at as Date).getTime() + 1) }),
    ).toBeGreaterThanOrEqual(10);
    expect(await engine.goalPosition({ kind: 'time', at: new Date(0) })).toBe(0);
    await engine.replay('_early', 10);
    // Events 1..10 add 1..10 round-robin to s0..s4: s0 gets 1+6, s1 2+7, …
    expect(await totals('totals_early')).toEqual({ s0: '7', s1: '9', s2: '11', s3: '13', s4: '15' });
  });

  it('finds a corrupted live row, with the row on both sides', async () => {
    const goal = await engine.goalPosition({ kind: 'head' });
    await engine.replay('_check', goal);
    await dataSource.query(`UPDATE ${SCHEMA}.totals SET amount = amount + 1 WHERE stream_id = 's3'`);
    try {
      const [totalsDifference, entriesDifference] = await engine.compare('_check', goal);
      expect(entriesDifference!.count).toBe(0);
      expect(totalsDifference!.count).toBe(2);
      expect(totalsDifference!.rows.map((row) => [row.side, row.row.stream_id])).toEqual(
        expect.arrayContaining([
          ['live', 's3'],
          ['replay', 's3'],
        ]),
      );
    } finally {
      await dataSource.query(`UPDATE ${SCHEMA}.totals SET amount = amount - 1 WHERE stream_id = 's3'`);
    }
  });

  it('swaps the replay in while writers append: each event applied once, names made canonical', async () => {
    const goal = await engine.goalPosition({ kind: 'head' });
    await engine.replay('_shadow', goal);
    let stop = false;
    let written = 0;
    const writer = (async () => {
      while (!stop) {
        await add('s9', 1);
        written += 1;
      }
    })();
    await sleep(50);
    await engine.swap('_shadow', goal);
    await sleep(50);
    stop = true;
    await writer;
    expect(written).toBeGreaterThan(0);
    expect((await totals('totals')).s9).toBe(String(written));
    const [{ entries }] = await dataSource.query(
      `SELECT count(*)::int AS entries FROM ${SCHEMA}.entries WHERE stream_id = 's9'`,
    );
    expect(entries).toBe(written);

    const indexes = await dataSource.query(
      `SELECT tablename, indexname FROM pg_indexes WHERE schemaname = $1 AND tablename IN ('entries', 'entries_old') ORDER BY 1, 2`,
      [SCHEMA],
    );
    expect(indexes).toEqual([
      { tablename: 'entries', indexname: 'entries_pkey' },
      { tablename: 'entries', indexname: 'entries_stream_id_idx' },
      { tablename: 'entries_old', indexname: 'entries_old_pkey' },
      { tablename: 'entries_old', indexname: 'entries_old_stream_id_idx' },
    ]);
    const [{ sequence }] = await dataSource.query(
      `SELECT pg_get_serial_sequence('${SCHEMA}.entries', 'entry_id') AS sequence`,
    );
    expect(sequence).toBe(`${SCHEMA}.entries_entry_id_seq`);
    const [{ constraint }] = await dataSource.query(
      `SELECT conname AS constraint FROM pg_constraint WHERE conrelid = '${SCHEMA}.totals'::regclass AND contype = 'c'`,
    );
    expect(constraint).toBe('totals_amount_check');

    // A second replay and swap works: the fresh shadow tables' names collide with nothing.
    const next = await engine.goalPosition({ kind: 'head' });
    await engine.replay('_shadow', next);
    await engine.swap('_shadow', next);
    expect((await engine.compare('_shadow', next).catch((error: Error) => error.message)) as string).toMatch(
      /not found|does not exist/,
    );
    await engine.replay('_after', next);
    expect((await engine.compare('_after', next)).map((difference) => difference.count)).toEqual([0, 0]);
  }, 30_000);

  describe('with a projection that has a bulk load', () => {
    let bulkEngine: ReplayEngine;

    beforeAll(() => {
      bulkEngine = new ReplayEngine({
        dataSource,
        schema: SCHEMA,
        projections: [toyWithBulkLoad],
        batchSize: 7,
      });
    });

    it('uses it for a full replay, and the result equals what apply wrote live', async () => {
      const goal = await bulkEngine.goalPosition({ kind: 'head' });
      bulkLoads.length = 0;
      const outcome = await bulkEngine.replay('_bulk', goal);
      expect(bulkLoads).toEqual(['_bulk']);
      expect(outcome.events).toBe(goal);
      expect((await bulkEngine.compare('_bulk', goal)).map((difference) => difference.count)).toEqual([0, 0]);
      // A point in time too: the bulk load stops where the goal does.
      await bulkEngine.replay('_bulk_early', 10);
      expect(await totals('totals_bulk_early')).toEqual({ s0: '7', s1: '9', s2: '11', s3: '13', s4: '15' });
    });

    it('fails the replay when Postgres refuses a streamed row, and the next replay runs normally', async () => {
      // Every event's entry row is broken (a text where the amount goes): COPY refuses it.
      const broken: Projection = {
        ...toyWithBulkLoad,
        bulkLoad: async (context) => {
          const entries = await context.copy('entries', ['stream_id', 'amount', 'position']);
          return {
            apply: (events) =>
              entries.write(
                events
                  .map((event) => copyRow([event.streamId, 'not a number', event.globalPosition]))
                  .join(''),
              ),
            finish: () => entries.end(),
          };
        },
      };
      const brokenEngine = new ReplayEngine({
        dataSource,
        schema: SCHEMA,
        projections: [broken],
        batchSize: 7,
      });
      const goal = await brokenEngine.goalPosition({ kind: 'head' });
      await expect(brokenEngine.replay('_bulk_bad', goal)).rejects.toThrow(
        /invalid input syntax for type bigint/,
      );
      const [{ rows }] = await dataSource.query(
        `SELECT count(*)::int AS rows FROM ${SCHEMA}.entries_bulk_bad`,
      );
      expect(rows).toBe(0);
      // No connection is left stuck in a COPY: the pool serves the next replay.
      await bulkEngine.replay('_bulk', goal);
      expect((await bulkEngine.compare('_bulk', goal)).map((difference) => difference.count)).toEqual([0, 0]);
    });
  });
});
