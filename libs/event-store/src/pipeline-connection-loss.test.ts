import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { DataSource } from 'typeorm';
import { isDependencyFailure } from '@pf/contracts';
import { CommandPipeline, type BatchStrategy, type PipelineCommand } from './command-pipeline.js';
import { EventStore } from './event-store.js';
import { EVENT_STORE_TABLES } from './migrations.js';
import type { Statement } from './pipeline.js';
import { qualify } from './sql.js';
import { openStoreHarness, type StoreHarness } from './test-harness.js';

/**
 * The one write path when the connection breaks mid-batch (real Postgres): every command gets an
 * answer, and a batch whose COMMIT may have gone through is never decided and written again.
 */

let harness: StoreHarness;

beforeAll(async () => {
  harness = await openStoreHarness('connloss', { poolMax: 4 });
  // A row here makes the COMMIT slow (a deferred trigger sleeps): the connection can be cut
  // while the server is committing, after every statement and the COMMIT were sent.
  await harness.dataSource.query(`
    CREATE TABLE casino.slow_at_commit (id int);
    CREATE FUNCTION casino.sleep_at_commit() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN PERFORM pg_sleep(0.6); RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER sleep_at_commit AFTER INSERT ON casino.slow_at_commit
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION casino.sleep_at_commit();`);
});

afterAll(async () => {
  await harness?.close();
});

async function totalOf(store: EventStore, streamId: string): Promise<number> {
  return (await store.readStream(streamId)).reduce((total, event) => total + Number(event.data.amount), 0);
}

/** Settles within `ms` or reports 'unanswered'. */
async function within<T>(promise: Promise<T>, ms: number): Promise<PromiseSettledResult<T> | 'unanswered'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise.then(
        (value): PromiseSettledResult<T> => ({ status: 'fulfilled', value }),
        (reason: unknown): PromiseSettledResult<T> => ({ status: 'rejected', reason }),
      ),
      new Promise<'unanswered'>((resolve) => (timer = setTimeout(() => resolve('unanswered'), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Cuts every connection of the data source on the client side (the server sees the socket close). */
function cutConnections(dataSource: DataSource): void {
  const pool = (dataSource.driver as unknown as { master: { _clients: pg.Client[] } }).master;
  for (const client of pool._clients)
    (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
}

describe('group commit when the connection breaks mid-batch', () => {
  it('given a command that loses the connection inside a batch, then every command of the batch is answered and nothing is written', async () => {
    const pipeline = new CommandPipeline(harness.store, { groupCommit: {} });
    const add = (streamId: string, load?: string): PipelineCommand<{ version: number }, number, number> => ({
      streamId,
      load: async (runner) => {
        if (load) await runner.query(load);
        return { version: 0 };
      },
      decide: () => [1],
      encode: (amount) => ({ type: 'added', data: { amount } }),
      reply: () => 1,
    });
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const blocker = add(`blocker-${randomUUID()}`);
    const first = pipeline.execute({
      ...blocker,
      load: async (runner) => {
        await gate;
        return blocker.load(runner);
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const streams = Array.from({ length: 3 }, () => `cut-${randomUUID()}`);
    // The second command's connection is terminated by the server while the batch is open.
    const commands = streams.map((streamId, index) =>
      pipeline.execute(
        add(streamId, index === 1 ? 'SELECT pg_terminate_backend(pg_backend_pid())' : undefined),
      ),
    );
    openGate();
    await first;
    const outcomes = await Promise.all(commands.map((command) => within(command, 3_000)));
    expect(outcomes.map((outcome) => (outcome === 'unanswered' ? outcome : outcome.status))).toEqual([
      'rejected',
      'rejected',
      'rejected',
    ]);
    // Told the database failed (503, the write may have happened), not refused.
    for (const outcome of outcomes)
      expect(isDependencyFailure((outcome as PromiseRejectedResult).reason)).toBe(true);
    expect(await Promise.all(streams.map((streamId) => totalOf(harness.store, streamId)))).toEqual([0, 0, 0]);
    await pipeline.drain();
  });
});

describe('batch strategy when the connection breaks during the COMMIT', () => {
  interface Add {
    streamId: string;
    amount: number;
    owed?: Statement;
  }

  /** A counter per stream, read in the batch's transaction; event ids are fresh (no command ids). */
  function counter(schema: string, decided: () => void): BatchStrategy<Add, Map<string, number>, number> {
    const events = qualify(schema, EVENT_STORE_TABLES.events);
    return {
      loadBatch: async (commands, reader) => {
        const [result] = await reader.send([
          {
            text: `SELECT s.stream_id, count(e.stream_id)::int AS version
                   FROM unnest($1::text[]) AS s(stream_id) LEFT JOIN ${events} AS e ON e.stream_id = s.stream_id
                   GROUP BY s.stream_id`,
            values: [[...new Set(commands.map((command) => command.streamId))]],
          },
        ]);
        const rows = result!.rows as Array<{ stream_id: string; version: number }>;
        return { state: new Map(rows.map((row) => [row.stream_id, row.version])) };
      },
      decide: (commands, versions) => {
        decided();
        return {
          appends: commands.map((command) => ({
            streamId: command.streamId,
            expectedVersion: versions.get(command.streamId)!,
            events: [{ eventId: randomUUID(), type: 'added', data: { amount: command.amount } }],
          })),
          statements: commands.flatMap((command) => (command.owed ? [command.owed] : [])),
          committed: () => commands.map((command) => ({ reply: command.amount })),
        };
      },
    };
  }

  it('given a batch whose connection is cut while it commits, then it is not written again and every command is told the write may have happened', async () => {
    const dataSource = await harness.openDataSource(2);
    try {
      const store = new EventStore({ dataSource, schema: harness.schema });
      let decisions = 0;
      let cut: Promise<void> | undefined;
      const strategy = counter(harness.schema, () => {
        decisions += 1;
        // The first decision's round trip (append, owed statements, COMMIT) is on its way: cut
        // the connection while the server sleeps inside the COMMIT.
        if (decisions === 1)
          cut = new Promise((resolve) => setTimeout(resolve, 250)).then(() => cutConnections(dataSource));
      });
      const writer = new CommandPipeline(store, {
        retry: { maxAttempts: 5, baseDelayMs: 1, maxDelayMs: 5 },
      }).batchWriter(strategy, { gatherBelow: 12 });
      const streams = [`ambiguous-${randomUUID()}`, `ambiguous-${randomUUID()}`];
      const outcomes = await Promise.allSettled([
        writer.execute({ streamId: streams[0]!, amount: 3 }),
        writer.execute({
          streamId: streams[1]!,
          amount: 4,
          owed: { text: 'INSERT INTO casino.slow_at_commit VALUES (1)' },
        }),
      ]);
      await cut;
      // The server finished the COMMIT the client did not see.
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(await totalOf(harness.store, streams[0]!)).toBe(3);
      expect(await totalOf(harness.store, streams[1]!)).toBe(4);
      expect(decisions).toBe(1);
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected');
        expect(isDependencyFailure((outcome as PromiseRejectedResult).reason)).toBe(true);
      }
    } finally {
      await dataSource.destroy().catch(() => undefined);
    }
  });
});
