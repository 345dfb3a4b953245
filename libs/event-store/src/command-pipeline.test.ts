import { randomUUID } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import { DomainError, type Decider } from '@pf/contracts';
import {
  CommandPipeline,
  DEFAULT_RETRY_POLICY,
  loadByFolding,
  retryDelayMs,
  type LoadedBase,
  type PipelineCommand,
} from './command-pipeline.js';
import { VersionConflictError } from './errors.js';
import { EventStore } from './event-store.js';
import { nameBasedUuid } from './ids.js';
import { openStoreHarness, type StoreHarness } from './test-harness.js';
import type { RecordedEvent } from './types.js';

/** A counter aggregate: `add` refuses to go above a limit, so the decider can say no. */
interface Added {
  type: 'added';
  amount: number;
}
const counter: Decider<{ amount: number }, Added, number> = {
  initialState: () => 0,
  decide: (command, total) => {
    if (total + command.amount > 1_000_000) throw new DomainError('limit_reached', 'the counter is full');
    return [{ type: 'added', amount: command.amount }];
  },
  evolve: (total, event) => total + event.amount,
};
const decodeAdded = (recorded: RecordedEvent): Added => ({
  type: 'added',
  amount: Number(recorded.data.amount),
});

interface CounterLoaded extends LoadedBase {
  state: number;
  transactionId: string;
}

/** The command every test sends: add `amount` to the counter in `streamId`, reply with the total after it. */
function add(
  store: EventStore,
  streamId: string,
  amount: number,
  extra: Partial<PipelineCommand<CounterLoaded, Added, number>> = {},
): PipelineCommand<CounterLoaded, Added, number> {
  return {
    streamId,
    load: async (runner) => {
      const [{ txid }] = (await runner.query('SELECT pg_current_xact_id()::text AS txid')) as Array<{
        txid: string;
      }>;
      return { ...(await loadByFolding(store, runner, streamId, counter, decodeAdded)), transactionId: txid };
    },
    decide: (loaded) => counter.decide({ amount }, loaded.state),
    encode: (event) => ({ type: event.type, data: { amount: event.amount } }),
    reply: (decision) => decision.events.reduce(counter.evolve, decision.loaded.state),
    ...extra,
  };
}

async function totalOf(store: EventStore, streamId: string): Promise<number> {
  return (await store.readStream(streamId)).map(decodeAdded).reduce(counter.evolve, 0);
}

let harness: StoreHarness;

beforeAll(async () => {
  harness = await openStoreHarness('pipeline', { poolMax: 8 });
  await harness.dataSource.query(
    'CREATE TABLE casino.side_effects (stream_id text NOT NULL, amount int NOT NULL)',
  );
});

afterAll(async () => {
  await harness?.close();
});

describe('retry policy', () => {
  it('given attempt n, then the pause is random below a ceiling that doubles per attempt up to the maximum', () => {
    const policy = { maxAttempts: 10, baseDelayMs: 2, maxDelayMs: 50 };
    expect(retryDelayMs(policy, 1, () => 0)).toBe(0);
    expect([1, 2, 3, 4, 5, 6, 7].map((attempt) => retryDelayMs(policy, attempt, () => 1))).toEqual([
      2, 4, 8, 16, 32, 50, 50,
    ]);
    expect(retryDelayMs(policy, 3, () => 0.5)).toBe(4);
  });
});

describe('CommandPipeline, one transaction per command', () => {
  it('given concurrent writers on one stream, then conflicts are retried and the total equals the commands', async () => {
    const pipeline = new CommandPipeline(harness.store, { retry: { maxAttempts: 50 } });
    const stream = `counter-${randomUUID()}`;
    const replies = await Promise.all(
      Array.from({ length: 40 }, () => pipeline.execute(add(harness.store, stream, 1))),
    );
    expect(await totalOf(harness.store, stream)).toBe(40);
    expect([...replies].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, index) => index + 1));
    expect(pipeline.stats.retries).toBeGreaterThan(0);
  });

  it('given a command id that ran before, then the repeat is answered from the first run and nothing is appended', async () => {
    const pipeline = new CommandPipeline(harness.store);
    const stream = `replay-${randomUUID()}`;
    const decisions: Array<{ replayed: boolean; eventIds: string[] }> = [];
    const command = add(harness.store, stream, 3, {
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
    await pipeline.execute(command);
    expect(decisions.map((decision) => decision.replayed)).toEqual([false, true]);
    expect(decisions[1]!.eventIds).toEqual(decisions[0]!.eventIds);
    expect(decisions[0]!.eventIds).toEqual([nameBasedUuid(`command-1/${stream}/0`)]);
    expect(await harness.store.readStream(stream)).toHaveLength(1);
  });

  it('given a conflict on every attempt, then it gives up after maxAttempts with the conflict', async () => {
    const pipeline = new CommandPipeline(harness.store, {
      retry: { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 2 },
    });
    const stream = `stale-${randomUUID()}`;
    await pipeline.execute(add(harness.store, stream, 1));
    let loads = 0;
    const stale = add(harness.store, stream, 1);
    const failure = await pipeline
      .execute({
        ...stale,
        // A loader that always reports the version before the last: every append conflicts.
        load: async (runner) => {
          loads += 1;
          const loaded = await stale.load(runner);
          return { ...loaded, version: loaded.version - 1 };
        },
      })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(VersionConflictError);
    expect(loads).toBe(4);
    expect(await totalOf(harness.store, stream)).toBe(1);
  });

  it('given a refusal by the decider, then the domain error reaches the caller and nothing is written', async () => {
    const pipeline = new CommandPipeline(harness.store);
    const stream = `refused-${randomUUID()}`;
    const failure = await pipeline
      .execute(add(harness.store, stream, 2_000_000))
      .catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'limit_reached' });
    expect(await harness.store.readStream(stream)).toHaveLength(0);
  });

  it('given writes the decision owes, then they commit with the events, or neither does', async () => {
    const pipeline = new CommandPipeline(harness.store);
    const stream = `owed-${randomUUID()}`;
    const owing = (amount: number, fail: boolean) =>
      add(harness.store, stream, amount, {
        afterAppend: async (runner: QueryRunner, decision) => {
          await runner.query('INSERT INTO casino.side_effects VALUES ($1, $2)', [
            stream,
            decision.events[0]!.amount,
          ]);
          if (fail) await runner.query('SELECT 1 / 0');
        },
      });
    await pipeline.execute(owing(5, false));
    await expect(pipeline.execute(owing(7, true))).rejects.toThrow(/division by zero/);
    expect(await totalOf(harness.store, stream)).toBe(5);
    expect(
      await harness.dataSource.query('SELECT amount FROM casino.side_effects WHERE stream_id = $1', [stream]),
    ).toEqual([{ amount: 5 }]);
  });
});

describe('CommandPipeline with group commit', () => {
  it('given a batch in flight, then commands arriving meanwhile are decided together in the next transaction', async () => {
    const pipeline = new CommandPipeline(harness.store, { groupCommit: { maxBatchSize: 64 } });
    const stream = `group-${randomUUID()}`;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let firstLoaded!: () => void;
    const firstIsLoading = new Promise<void>((resolve) => (firstLoaded = resolve));
    const transactionIds: string[] = [];
    const recordTransaction = (
      command: PipelineCommand<CounterLoaded, Added, number>,
      wait?: Promise<void>,
    ) => ({
      ...command,
      load: async (runner: QueryRunner) => {
        const loaded = await command.load(runner);
        transactionIds.push(loaded.transactionId);
        if (wait) {
          firstLoaded();
          await wait;
        }
        return loaded;
      },
    });
    const first = pipeline.execute(recordTransaction(add(harness.store, stream, 1), gate));
    await firstIsLoading;
    const later = Array.from({ length: 5 }, () =>
      pipeline.execute(recordTransaction(add(harness.store, stream, 1))),
    );
    // The five wait while the first batch is in flight.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(transactionIds).toHaveLength(1);
    openGate();
    expect(await first).toBe(1);
    expect((await Promise.all(later)).sort()).toEqual([2, 3, 4, 5, 6]);
    expect(pipeline.stats.recentBatchSizes).toEqual([1, 5]);
    expect(new Set(transactionIds.slice(1)).size).toBe(1);
    expect(transactionIds[1]).not.toBe(transactionIds[0]);
    expect(await totalOf(harness.store, stream)).toBe(6);
  });

  it('given a refused and a failing command in a batch, then only they fail and the others commit', async () => {
    const pipeline = new CommandPipeline(harness.store, { groupCommit: {} });
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const blocker = `blocker-${randomUUID()}`;
    const blocking = add(harness.store, blocker, 1);
    const first = pipeline.execute({
      ...blocking,
      load: async (runner) => {
        const loaded = await blocking.load(runner);
        await gate;
        return loaded;
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const streams = Array.from({ length: 5 }, () => `batch-${randomUUID()}`);
    const outcomes = Promise.allSettled(
      streams.map((stream, index) =>
        pipeline.execute(
          index === 1
            ? add(harness.store, stream, 2_000_000) // refused by the decider
            : index === 3
              ? add(harness.store, stream, 1, {
                  // fails in SQL after its append: the transaction would be aborted without a savepoint
                  afterAppend: async (runner: QueryRunner) => void (await runner.query('SELECT 1 / 0')),
                })
              : add(harness.store, stream, 1),
        ),
      ),
    );
    openGate();
    await first;
    const settled = await outcomes;
    expect(settled.map((outcome) => outcome.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'limit_reached' });
    expect(String((settled[3] as PromiseRejectedResult).reason)).toMatch(/division by zero/);
    expect(await Promise.all(streams.map((stream) => totalOf(harness.store, stream)))).toEqual([
      1, 0, 1, 0, 1,
    ]);
    expect(pipeline.stats.recentBatchSizes).toEqual([1, 5]);
  });

  it('given two replicas with group commit writing one stream, then every command lands once', async () => {
    const otherDataSource = await harness.openDataSource(4);
    try {
      const otherStore = new EventStore({ dataSource: otherDataSource, schema: harness.schema });
      const replicas = [
        new CommandPipeline(harness.store, { groupCommit: { maxBatchSize: 8 }, retry: { maxAttempts: 50 } }),
        new CommandPipeline(otherStore, { groupCommit: { maxBatchSize: 8 }, retry: { maxAttempts: 50 } }),
      ];
      const stream = `replicas-${randomUUID()}`;
      await Promise.all(
        Array.from({ length: 60 }, (_, index) => {
          const replica = replicas[index % 2]!;
          return replica.execute(add(replica.store, stream, 1));
        }),
      );
      expect(await totalOf(harness.store, stream)).toBe(60);
      expect(replicas.reduce((sum, replica) => sum + replica.stats.batchedCommands, 0)).toBe(60);
      expect(Math.max(...replicas.flatMap((replica) => replica.stats.recentBatchSizes))).toBeGreaterThan(1);
    } finally {
      await otherDataSource.destroy();
    }
  });

  it('keeps the default policy bounded', () => {
    expect(DEFAULT_RETRY_POLICY.maxAttempts).toBeLessThanOrEqual(50);
    expect(retryDelayMs(DEFAULT_RETRY_POLICY, 1_000, () => 1)).toBe(DEFAULT_RETRY_POLICY.maxDelayMs);
  });
});
