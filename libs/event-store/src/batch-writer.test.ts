import { randomUUID } from 'node:crypto';
import { DomainError } from '@pf/contracts';
import {
  CommandPipeline,
  type BatchOutcome,
  type BatchStrategy,
  type BatchWriter,
} from './command-pipeline.js';
import { isVersionConflict } from './errors.js';
import { EventStore } from './event-store.js';
import { EVENT_STORE_TABLES } from './migrations.js';
import type { Statement } from './pipeline.js';
import { qualify } from './sql.js';
import { openStoreHarness, type StoreHarness } from './test-harness.js';

/**
 * The pipeline's second batch strategy (ADR 0021): a batch loaded and decided as a whole by a
 * strategy and written in one pipelined round trip. The strategy here is a counter per stream
 * (`add` refuses to go above a limit), read with one statement or taken from a cache (a guess
 * the append's version check verifies).
 */
interface Add {
  streamId: string;
  amount: number;
  /** A statement the decision owes (sent after the append, in the same round trip). */
  owed?: Statement;
  /** The loader waits for it (holds the batch open). */
  gate?: Promise<void>;
}

interface Counter {
  version: number;
  total: number;
}

interface CounterState {
  streams: Map<string, Counter>;
  /** The reading transaction's id, or 'guess' when nothing was read. */
  transactionId: string;
}

const LIMIT = 1_000_000;

interface Observed {
  reads: number;
  guesses: number;
  /** Batches whose `committed` ran, with their sizes. */
  committed: number[];
  /** Reading transactions, in order. */
  transactionIds: string[];
}

function counterStrategy(
  schema: string,
  options: { cache?: Map<string, Counter> } = {},
): BatchStrategy<Add, CounterState, number> & { observed: Observed } {
  const observed: Observed = { reads: 0, guesses: 0, committed: [], transactionIds: [] };
  const events = qualify(schema, EVENT_STORE_TABLES.events);
  return {
    observed,
    loadBatch: async (commands, reader, attempt) => {
      for (const command of commands) if (command.gate) await command.gate;
      const streamIds = [...new Set(commands.map((command) => command.streamId))];
      const cache = options.cache;
      if (cache && attempt === 1 && streamIds.every((streamId) => cache.has(streamId))) {
        observed.guesses += 1;
        return {
          state: {
            streams: new Map(streamIds.map((streamId) => [streamId, { ...cache.get(streamId)! }])),
            transactionId: 'guess',
          },
          // The append's expected versions are the check: a stale guess is a version conflict.
          check: [],
          guessFailed: (error) => {
            for (const streamId of streamIds) cache.delete(streamId);
            return isVersionConflict(error);
          },
        };
      }
      observed.reads += 1;
      const [result] = await reader.send([
        {
          text: `SELECT s.stream_id, count(e.stream_id)::int AS version,
                   coalesce(sum((e.data->>'amount')::int), 0)::int AS total, pg_current_xact_id()::text AS txid
                 FROM unnest($1::text[]) AS s(stream_id) LEFT JOIN ${events} AS e ON e.stream_id = s.stream_id
                 GROUP BY s.stream_id`,
          values: [streamIds],
        },
      ]);
      const rows = result!.rows as Array<{ stream_id: string; version: number; total: number; txid: string }>;
      observed.transactionIds.push(rows[0]!.txid);
      return {
        state: {
          streams: new Map(rows.map((row) => [row.stream_id, { version: row.version, total: row.total }])),
          transactionId: rows[0]!.txid,
        },
      };
    },
    decide: (commands, state) => {
      const before = new Map([...state.streams].map(([streamId, counter]) => [streamId, { ...counter }]));
      const added = new Map<string, number[]>();
      const outcomes: Array<BatchOutcome<number> | 'pending'> = [];
      const owed: Statement[] = [];
      for (const command of commands) {
        const counter = state.streams.get(command.streamId)!;
        if (counter.total + command.amount > LIMIT) {
          outcomes.push({ error: new DomainError('limit_reached', 'the counter is full') });
          continue;
        }
        counter.total += command.amount;
        added.set(command.streamId, [...(added.get(command.streamId) ?? []), command.amount]);
        outcomes.push({ reply: counter.total });
        if (command.owed) owed.push(command.owed);
      }
      return {
        appends: [...added].map(([streamId, amounts]) => ({
          streamId,
          expectedVersion: before.get(streamId)!.version,
          events: amounts.map((amount) => ({ eventId: randomUUID(), type: 'added', data: { amount } })),
        })),
        statements: owed,
        committed: (recorded) => {
          observed.committed.push(commands.length);
          for (const [streamId, counter] of state.streams)
            options.cache?.set(streamId, {
              version: counter.version + recorded.filter((event) => event.streamId === streamId).length,
              total: counter.total,
            });
          return outcomes as Array<BatchOutcome<number>>;
        },
      };
    },
  };
}

let harness: StoreHarness;

beforeAll(async () => {
  harness = await openStoreHarness('batchwriter', { poolMax: 8 });
  await harness.dataSource.query('CREATE TABLE casino.owed (stream_id text NOT NULL)');
  // A row here fails the COMMIT (a deferred check), not the statement that inserts it.
  await harness.dataSource.query(`
    CREATE TABLE casino.fails_at_commit (id int);
    CREATE FUNCTION casino.refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$;
    CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON casino.fails_at_commit
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION casino.refuse_at_commit();`);
});

afterAll(async () => {
  await harness?.close();
});

async function totalOf(store: EventStore, streamId: string): Promise<number> {
  return (await store.readStream(streamId)).reduce((total, event) => total + Number(event.data.amount), 0);
}

async function transactionsOf(streamIds: readonly string[]): Promise<number> {
  const [row] = (await harness.dataSource.query(
    `SELECT count(DISTINCT transaction_id)::int AS transactions FROM casino.events WHERE stream_id = ANY($1::text[])`,
    [streamIds],
  )) as Array<{ transactions: number }>;
  return row!.transactions;
}

/** A gate the test opens, and a promise that resolves once a loader reached it. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('CommandPipeline with a batch strategy (real Postgres)', () => {
  it('given a batch in flight, then commands arriving meanwhile wait and commit together as the next batch, read in one transaction', async () => {
    const strategy = counterStrategy(harness.schema);
    const writer = new CommandPipeline(harness.store).batchWriter(strategy);
    const held = gate();
    const first = writer.execute({ streamId: `group-${randomUUID()}`, amount: 1, gate: held.wait });
    await settle(20);
    const streams = Array.from({ length: 5 }, () => `group-${randomUUID()}`);
    const later = streams.map((streamId) => writer.execute({ streamId, amount: 2 }));
    await settle(30);
    expect(strategy.observed.committed).toEqual([]);
    held.open();
    expect(await first).toBe(1);
    expect(await Promise.all(later)).toEqual([2, 2, 2, 2, 2]);
    expect(writer.stats.recentBatchSizes).toEqual([1, 5]);
    expect(strategy.observed.reads).toBe(2);
    expect(await transactionsOf(streams)).toBe(1);
  });

  it('given commands issued in one event-loop turn with gatherBelow, then they form one batch', async () => {
    const writer = new CommandPipeline(harness.store).batchWriter(counterStrategy(harness.schema), {
      gatherBelow: 12,
    });
    const streams = Array.from({ length: 4 }, () => `gather-${randomUUID()}`);
    await Promise.all(streams.map((streamId) => writer.execute({ streamId, amount: 1 })));
    expect(writer.stats.recentBatchSizes).toEqual([4]);
    expect(await transactionsOf(streams)).toBe(1);
  });

  it('given commands on one stream in a batch, then each is decided on what its predecessors left and a refusal fails alone', async () => {
    const writer = new CommandPipeline(harness.store).batchWriter(counterStrategy(harness.schema), {
      gatherBelow: 12,
    });
    const streamId = `sequence-${randomUUID()}`;
    const outcomes = await Promise.allSettled(
      [5, LIMIT, 7].map((amount) => writer.execute({ streamId, amount })),
    );
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[0] as PromiseFulfilledResult<number>).value).toBe(5);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'limit_reached' });
    expect((outcomes[2] as PromiseFulfilledResult<number>).value).toBe(12);
    expect(writer.stats.recentBatchSizes).toEqual([3]);
    expect(await totalOf(harness.store, streamId)).toBe(12);
  });

  it('given a command failing in SQL inside a batch, then the batch is split and only that command fails', async () => {
    const strategy = counterStrategy(harness.schema);
    const writer = new CommandPipeline(harness.store).batchWriter(strategy, { gatherBelow: 12 });
    const streams = Array.from({ length: 4 }, () => `split-${randomUUID()}`);
    const outcomes = await Promise.allSettled(
      streams.map((streamId, index) =>
        writer.execute({
          streamId,
          amount: 1,
          owed:
            index === 2
              ? { text: 'SELECT 1 / 0' }
              : { text: 'INSERT INTO casino.owed VALUES ($1)', values: [streamId] },
        }),
      ),
    );
    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect(String((outcomes[2] as PromiseRejectedResult).reason)).toMatch(/division by zero/);
    expect(await Promise.all(streams.map((streamId) => totalOf(harness.store, streamId)))).toEqual([
      1, 1, 0, 1,
    ]);
    // The whole batch failed once (nothing of it committed), then each command ran alone.
    expect(strategy.observed.committed).toEqual([1, 1, 1]);
    expect(writer.stats.recentBatchSizes).toEqual([1, 1, 1]);
    const owed = (await harness.dataSource.query(
      'SELECT stream_id FROM casino.owed WHERE stream_id = ANY($1)',
      [streams],
    )) as Array<{ stream_id: string }>;
    expect(owed.map((row) => row.stream_id).sort()).toEqual([streams[0], streams[1], streams[3]].sort());
  });

  it('given a COMMIT that fails, then no reply is given for the batch and its commands are retried alone', async () => {
    const strategy = counterStrategy(harness.schema);
    const writer = new CommandPipeline(harness.store).batchWriter(strategy, { gatherBelow: 12 });
    const good = `commit-${randomUUID()}`;
    const bad = `commit-${randomUUID()}`;
    const outcomes = await Promise.allSettled([
      writer.execute({ streamId: good, amount: 3 }),
      writer.execute({
        streamId: bad,
        amount: 4,
        owed: { text: 'INSERT INTO casino.fails_at_commit VALUES (1)' },
      }),
    ]);
    expect(outcomes[0]).toEqual({ status: 'fulfilled', value: 3 });
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(/refused at commit/);
    // `committed` (which gives the replies) ran only for the good command, alone, after its COMMIT.
    expect(strategy.observed.committed).toEqual([1]);
    expect(await totalOf(harness.store, good)).toBe(3);
    expect(await totalOf(harness.store, bad)).toBe(0);
  });

  it('given two writers on one stream (two replicas), then conflicts are retried and every command lands once', async () => {
    const otherDataSource = await harness.openDataSource(4);
    try {
      const otherStore = new EventStore({ dataSource: otherDataSource, schema: harness.schema });
      const writers: Array<BatchWriter<Add, number>> = [harness.store, otherStore].map((store) =>
        new CommandPipeline(store, { retry: { maxAttempts: 50 } }).batchWriter(
          counterStrategy(harness.schema),
          {
            maxBatchSize: 8,
          },
        ),
      );
      const streamId = `replicas-${randomUUID()}`;
      const replies = await Promise.all(
        Array.from({ length: 60 }, (_, index) => writers[index % 2]!.execute({ streamId, amount: 1 })),
      );
      expect(await totalOf(harness.store, streamId)).toBe(60);
      expect([...replies].sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, index) => index + 1));
      expect(writers.reduce((sum, writer) => sum + writer.stats.retries, 0)).toBeGreaterThan(0);
    } finally {
      await otherDataSource.destroy();
    }
  });

  it('given a guess, then the batch is one round trip; a stale guess is decided again on a read', async () => {
    const cache = new Map<string, Counter>();
    const strategy = counterStrategy(harness.schema, { cache });
    const writer = new CommandPipeline(harness.store).batchWriter(strategy);
    const streamId = `guess-${randomUUID()}`;
    expect(await writer.execute({ streamId, amount: 1 })).toBe(1);
    expect(await writer.execute({ streamId, amount: 1 })).toBe(2);
    expect(strategy.observed).toMatchObject({ reads: 1, guesses: 1 });
    // Another writer moves the stream on behind the cache's back.
    await harness.store.append(streamId, 2, [{ eventId: randomUUID(), type: 'added', data: { amount: 10 } }]);
    expect(await writer.execute({ streamId, amount: 1 })).toBe(13);
    expect(strategy.observed).toMatchObject({ reads: 2, guesses: 2 });
    expect(writer.stats.retries).toBe(1);
    expect(await totalOf(harness.store, streamId)).toBe(13);
  });

  it('given a full queue, then a command is refused at once as unavailable, nothing written', async () => {
    const writer = new CommandPipeline(harness.store).batchWriter(counterStrategy(harness.schema), {
      maxQueued: 2,
    });
    const held = gate();
    const first = writer.execute({ streamId: `full-${randomUUID()}`, amount: 1, gate: held.wait });
    await settle(20);
    const queued = [1, 2].map(() => writer.execute({ streamId: `full-${randomUUID()}`, amount: 1 }));
    const refusedStream = `full-${randomUUID()}`;
    const refused = await writer
      .execute({ streamId: refusedStream, amount: 1 })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({
      code: 'service_unavailable',
      details: { write_may_have_happened: false },
    });
    held.open();
    await Promise.all([first, ...queued]);
    await writer.drain();
    expect(await totalOf(harness.store, refusedStream)).toBe(0);
  });

  it('given a conflict on every attempt, then it gives up after maxAttempts with the conflict', async () => {
    const base = counterStrategy(harness.schema);
    let loads = 0;
    const stale: BatchStrategy<Add, CounterState, number> = {
      loadBatch: async (commands, reader, attempt) => {
        loads += 1;
        const loaded = await base.loadBatch(commands, reader, attempt);
        for (const counter of loaded.state.streams.values()) counter.version -= 1;
        return loaded;
      },
      decide: base.decide,
    };
    const pipeline = new CommandPipeline(harness.store, {
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
    });
    const streamId = `stale-${randomUUID()}`;
    await harness.store.append(streamId, 0, [{ eventId: randomUUID(), type: 'added', data: { amount: 1 } }]);
    const failure = await pipeline
      .batchWriter(stale)
      .execute({ streamId, amount: 1 })
      .catch((error: unknown) => error);
    expect(isVersionConflict(failure)).toBe(true);
    expect(loads).toBe(3);
    expect(await totalOf(harness.store, streamId)).toBe(1);
  });

  it('drains: the pipeline resolves once every waiting and running batch has answered', async () => {
    const pipeline = new CommandPipeline(harness.store);
    const writer = pipeline.batchWriter(counterStrategy(harness.schema));
    const streamId = `drain-${randomUUID()}`;
    const settled: number[] = [];
    for (let index = 0; index < 10; index += 1)
      void writer.execute({ streamId, amount: 1 }).then((total) => settled.push(total));
    await pipeline.drain();
    await settle(0);
    expect(settled).toHaveLength(10);
    expect(await totalOf(harness.store, streamId)).toBe(10);
  });
});
