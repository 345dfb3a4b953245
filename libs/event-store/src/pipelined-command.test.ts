import { randomUUID } from 'node:crypto';
import { DomainError, type Decider } from '@pf/contracts';
import { countTraffic } from '@pf/testing';
import { CommandPipeline, type LoadedBase, type PipelineCommand } from './command-pipeline.js';
import { EventStore, eventColumns, recordedEventFromRow, type EventRow } from './event-store.js';
import type { PendingContext, Projection } from './projection.js';
import { namedStatement, qualify } from './sql.js';
import { openStoreHarness, type StoreHarness } from './test-harness.js';
import type { RecordedEvent } from './types.js';

/** A counter that refuses to go above a limit, so the decider can say no. */
interface Added {
  type: 'added';
  amount: number;
}
const counter: Decider<{ amount: number }, Added, number> = {
  initialState: () => 0,
  decide: (command, total) => {
    if (total + command.amount > 100) throw new DomainError('limit_reached', 'the counter is full');
    return [{ type: 'added', amount: command.amount }];
  },
  evolve: (total, event) => total + event.amount,
};

interface CounterLoaded extends LoadedBase {
  state: number;
}

/**
 * An inline projection that folds from what the writer loaded (PendingContext) like escrow's:
 * the total after the events, the version, the recorded time, and the position read by event id.
 */
const totals: Projection = {
  name: 'totals',
  tables: ['totals'],
  createTables: (target) => [
    `CREATE TABLE ${target.table('totals')} (stream_id text PRIMARY KEY, total int NOT NULL, version int NOT NULL, at timestamptz NOT NULL, position bigint NOT NULL)`,
  ],
  apply: async () => {
    throw new Error('totals: only the pipelined path writes here');
  },
  statements: (events, target, context?: PendingContext) => {
    if (!context) throw new Error('totals needs the writer context');
    const streamId = events[0]!.streamId;
    const loaded = context.loaded.get(streamId) as CounterLoaded;
    const total = events.reduce((sum, event) => sum + Number(event.data.amount), loaded.state);
    return [
      namedStatement(
        `INSERT INTO ${target.table('totals')} (stream_id, total, version, at, position)
         SELECT $1, $2, $3, $4, global_position FROM ${qualify(target.schema, 'events')} WHERE event_id = $5
         ON CONFLICT (stream_id) DO UPDATE SET total = EXCLUDED.total, version = EXCLUDED.version, at = EXCLUDED.at, position = EXCLUDED.position`,
        [
          streamId,
          total,
          Number(loaded.version) + events.length,
          context.transactionTime,
          events.at(-1)!.eventId,
        ],
      ),
    ];
  },
};

let harness: StoreHarness;
let store: EventStore;
/** Statements sent on the store's connections, and round trips (statements issued in one tick travel together). */
let counted: ReturnType<typeof countTraffic>;

beforeAll(async () => {
  harness = await openStoreHarness('pipelinedcommand', { poolMax: 6 });
  await harness.dataSource.query(
    `CREATE TABLE casino.owed (stream_id text NOT NULL, amount int NOT NULL);
     CREATE TABLE casino.totals (stream_id text PRIMARY KEY, total int NOT NULL, version int NOT NULL, at timestamptz NOT NULL, position bigint NOT NULL)`,
  );
  counted = countTraffic(harness.dataSource);
  store = new EventStore({ dataSource: harness.dataSource, schema: 'casino', inlineProjections: [totals] });
});

afterAll(async () => {
  await harness?.close();
});

const readSql = `SELECT ${eventColumns('e')} FROM casino.events AS e WHERE e.stream_id = $1 ORDER BY e.stream_version`;

/** Add `amount` to the counter in `streamId` (owing a side row per add); replies with the total after it. */
function add(
  streamId: string,
  amount: number,
  extra: Partial<PipelineCommand<CounterLoaded, Added, number>> = {},
): PipelineCommand<CounterLoaded, Added, number> {
  const loadedFrom = (history: RecordedEvent[]): CounterLoaded => ({
    state: history
      .map((event) => ({ type: 'added' as const, amount: Number(event.data.amount) }))
      .reduce(counter.evolve, 0),
    version: history.length,
    history,
  });
  return {
    streamId,
    load: async () => {
      throw new Error('the pipelined path does not call load');
    },
    decide: (loaded) => counter.decide({ amount }, loaded.state),
    encode: (event) => ({ type: event.type, data: { amount: event.amount } }),
    reply: (decision) => decision.events.reduce(counter.evolve, decision.loaded.state),
    pipelined: {
      loadStatement: () => namedStatement(readSql, [streamId]),
      loaded: (rows) => loadedFrom(rows.map((row) => recordedEventFromRow(row as unknown as EventRow))),
      afterAppendStatements: ({ events }) =>
        events.map((event) => ({
          text: 'INSERT INTO casino.owed (stream_id, amount) VALUES ($1, $2)',
          values: [streamId, event.amount],
        })),
    },
    ...extra,
  };
}

async function rowsOf(streamId: string) {
  const events = await store.readStream(streamId);
  const owed = await harness.dataSource.query('SELECT amount FROM casino.owed WHERE stream_id = $1', [
    streamId,
  ]);
  const [total] = await harness.dataSource.query(
    'SELECT total, version, at, position::int AS position FROM casino.totals WHERE stream_id = $1',
    [streamId],
  );
  return { events, owed, total };
}

describe('a pipelined command (CommandPipeline.execute without group commit)', () => {
  it('given a command, then it takes two round trips: BEGIN + now() + load, then append + projection + owed + COMMIT', async () => {
    const pipeline = new CommandPipeline(store);
    const stream = `counter-${randomUUID()}`;
    await pipeline.execute(add(stream, 5));
    const second = await counted(() => pipeline.execute(add(stream, 7)));
    expect(second.result).toBe(12);
    expect(second.roundTrips).toBe(2);
    expect(second.statements).toEqual([
      'BEGIN',
      'SELECT now()',
      'SELECT e.global_position::text',
      'WITH input',
      'INSERT INTO',
      'INSERT INTO',
      'COMMIT',
    ]);
    const { events, owed, total } = await rowsOf(stream);
    expect(events.map((event) => event.data.amount)).toEqual([5, 7]);
    expect(owed).toEqual([{ amount: 5 }, { amount: 7 }]);
    // The projection folded from what was loaded, at the transaction's time = the event's recorded time.
    expect(total).toEqual({
      total: 12,
      version: 2,
      at: events[1]!.recordedAt,
      position: events[1]!.globalPosition,
    });
  });

  it('given a refused command, then nothing is written and the locks go (the rollback is the second round trip)', async () => {
    const pipeline = new CommandPipeline(store);
    const stream = `full-${randomUUID()}`;
    await pipeline.execute(add(stream, 90));
    const refused = await counted(() => pipeline.execute(add(stream, 20)).catch((error: unknown) => error));
    expect(refused.result).toBeInstanceOf(DomainError);
    expect((refused.result as DomainError).code).toBe('limit_reached');
    expect(refused.roundTrips).toBe(2);
    expect(refused.statements.at(-1)).toBe('ROLLBACK');
    const { events, owed, total } = await rowsOf(stream);
    expect(events).toHaveLength(1);
    expect(owed).toEqual([{ amount: 90 }]);
    expect(total.total).toBe(90);
    // The connection went back to the pool outside a transaction: the next command commits.
    expect(await pipeline.execute(add(stream, 10))).toBe(100);
  });

  it('given a command id that ran before, then the repeat is a replay: nothing appended, nothing owed again', async () => {
    const pipeline = new CommandPipeline(store);
    const stream = `replay-${randomUUID()}`;
    const decisions: Array<{ replayed: boolean; eventIds: string[] }> = [];
    const command = add(stream, 3, {
      commandId: 'command-1',
      reply: (decision) => {
        decisions.push({
          replayed: decision.replayed,
          eventIds: decision.recorded.map((event) => event.eventId),
        });
        return decision.loaded.state;
      },
    });
    await pipeline.execute(command);
    const repeat = await counted(() => pipeline.execute(command));
    expect(decisions.map((decision) => decision.replayed)).toEqual([false, true]);
    expect(decisions[1]!.eventIds).toEqual(decisions[0]!.eventIds);
    expect(repeat.statements.at(-1)).toBe('ROLLBACK');
    const { events, owed } = await rowsOf(stream);
    expect(events).toHaveLength(1);
    expect(owed).toEqual([{ amount: 3 }]);
  });

  it('given another writer appending to the stream while the command decides, then the append conflicts, is retried and both count', async () => {
    const pipeline = new CommandPipeline(store);
    const stream = `race-${randomUUID()}`;
    let releaseOther!: () => void;
    const otherMayCommit = new Promise<void>((resolve) => (releaseOther = resolve));
    // The other writer appends (uncommitted) first; the command reads version 0, appends version 1
    // and waits on the other's index entry; once the other commits, its append is a conflict.
    const other = harness.store.transaction(async (runner) => {
      await harness.store.appendInTransaction(runner, stream, 0, [
        { eventId: randomUUID(), type: 'added', data: { amount: 1 } },
      ]);
      await otherMayCommit;
    });
    // Give the other writer's append time to happen before the command loads.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const command = pipeline.execute(add(stream, 2));
    for (let waited = 0; waited < 100; waited += 1) {
      const [blocked] = await harness.dataSource.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
      );
      if (blocked.n > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    releaseOther();
    await other;
    expect(await command).toBe(3);
    expect(pipeline.stats.retries).toBe(1);
    const { events, owed, total } = await rowsOf(stream);
    expect(events.map((event) => event.data.amount)).toEqual([1, 2]);
    // Owed once: the refused attempt's writes were rolled back with it.
    expect(owed).toEqual([{ amount: 2 }]);
    expect(total).toMatchObject({ total: 3, version: 2 });
  });

  it('given a store whose inline projections do not all offer statements, then the command runs on the one-statement-at-a-time path', async () => {
    const plain = new EventStore({
      dataSource: harness.dataSource,
      schema: 'casino',
      inlineProjections: [
        { ...totals, name: 'no_statements', statements: undefined, apply: async () => undefined },
      ],
    });
    const pipeline = new CommandPipeline(plain);
    const stream = `plain-${randomUUID()}`;
    const command = add(stream, 4);
    const loaded = await pipeline.execute({
      ...command,
      load: async (runner) => {
        const rows: EventRow[] = await runner.query(readSql, [stream]);
        return command.pipelined!.loaded(rows as never);
      },
    });
    expect(loaded).toBe(4);
    expect((await rowsOf(stream)).events).toHaveLength(1);
  });
});
