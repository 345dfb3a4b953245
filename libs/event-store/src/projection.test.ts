import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { QueryRunner } from 'typeorm';
import {
  createProjectionTables,
  projectionTarget,
  type Projection,
  type ProjectionTarget,
} from './projection.js';
import { AsyncProjectionRunner, catchUp, logHead, rebuildProjection } from './projection-runner.js';
import { openStoreHarness, type StoreHarness } from './test-harness.js';
import { TRANSFERRED_EVENT_TYPE, transferBalancesProjection } from './transfer-balances.projection.js';
import type { NewEvent, RecordedEvent } from './types.js';
import { waitFor } from '@pf/testing';

/** An order-sensitive read model: the last transfer seen per account, with its version. */
const lastTransferProjection: Projection = {
  name: 'last_transfer',
  tables: ['last_transfer'],
  createTables: (target: ProjectionTarget) => [
    `CREATE TABLE IF NOT EXISTS ${target.table('last_transfer')} (
      stream_id text PRIMARY KEY, last_version integer NOT NULL, last_event_id uuid NOT NULL, events integer NOT NULL)`,
  ],
  apply: async (runner: QueryRunner, events: readonly RecordedEvent[], target: ProjectionTarget) => {
    for (const event of events) {
      // Refuses a gap or a reordering: a version must follow the previous one exactly.
      const updated: unknown[] = await runner.query(
        `INSERT INTO ${target.table('last_transfer')} AS t (stream_id, last_version, last_event_id, events)
         VALUES ($1, $2, $3, 1)
         ON CONFLICT (stream_id) DO UPDATE SET last_version = EXCLUDED.last_version,
           last_event_id = EXCLUDED.last_event_id, events = t.events + 1
         WHERE t.last_version = EXCLUDED.last_version - 1
         RETURNING 1`,
        [event.streamId, event.streamVersion, event.eventId],
      );
      if (updated.length !== 1) throw new Error(`out of order: ${event.streamId} v${event.streamVersion}`);
    }
  },
};

const balances = transferBalancesProjection();
let harness: StoreHarness;

beforeAll(async () => {
  harness = await openStoreHarness('projection', {
    poolMax: 6,
    storeOptions: { inlineProjections: [balances] },
  });
  await createProjectionTables(harness.dataSource, balances, harness.store.liveTarget);
  await createProjectionTables(harness.dataSource, lastTransferProjection, harness.store.liveTarget);
});

afterAll(async () => {
  await harness?.close();
});

async function tableRows(target: ProjectionTarget, table: string, orderBy: string): Promise<unknown[]> {
  return harness.dataSource.query(`SELECT * FROM ${target.table(table)} ORDER BY ${orderBy}`);
}

const ACCOUNTS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
const transferArbitrary = fc.record({
  from: fc.constantFrom(...ACCOUNTS),
  to: fc.constantFrom(...ACCOUNTS),
  amountMicros: fc.bigInt({ min: 1n, max: 10n ** 12n }),
});
/** An append: a handful of transfers to one of a few streams (so streams get long histories). */
const appendArbitrary = fc.record({
  stream: fc.integer({ min: 0, max: 15 }),
  transfers: fc.array(transferArbitrary, { minLength: 1, maxLength: 12 }),
});

function transferEvents(transfers: Array<{ from: string; to: string; amountMicros: bigint }>): NewEvent[] {
  return transfers.map((transfer) => ({
    eventId: randomUUID(),
    type: TRANSFERRED_EVENT_TYPE,
    data: {
      fromAccountId: transfer.from,
      toAccountId: transfer.to,
      amountMicros: transfer.amountMicros,
    } as unknown as Record<string, unknown>,
  }));
}

describe('projections', () => {
  it('rebuild from position 0 equals the live inline projection after thousands of random events', async () => {
    const runId = randomUUID().slice(0, 8);
    let rebuilds = 0;
    let appended = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(appendArbitrary, { minLength: 40, maxLength: 80 }), async (appends) => {
        // Four writers at once, so transactions interleave as they do in a service.
        const lanes = [0, 1, 2, 3].map((lane) => appends.filter((_, index) => index % 4 === lane));
        await settleAll(
          lanes.map(async (lane) => {
            for (const append of lane) {
              const result = await harness.store.append(
                `${runId}-${append.stream}`,
                'any',
                transferEvents(append.transfers),
              );
              appended += result.events.length;
            }
          }),
        );
        rebuilds += 1;
        const rebuilt = await rebuildProjection({
          store: harness.store,
          projection: balances,
          suffix: `_rebuild_${rebuilds}`,
          batchSize: 500,
        });
        const live = await tableRows(harness.store.liveTarget, 'balances', 'account_id');
        expect(await tableRows(rebuilt.target, 'balances', 'account_id')).toEqual(live);
        // Double entry: the books balance in both.
        const [sum] = await harness.dataSource.query(
          `SELECT coalesce(sum(balance_micros), 0)::text AS total FROM ${rebuilt.target.table('balances')}`,
        );
        expect(sum.total).toBe('0');
        await harness.dataSource.query(`DROP TABLE ${rebuilt.target.table('balances')}`);
      }),
      { numRuns: 5, endOnFailure: true },
    );
    expect(appended).toBeGreaterThan(1_000);
  });

  it('an async projection follows the log with a checkpoint and equals its rebuild', async () => {
    const runner = new AsyncProjectionRunner({
      store: harness.store,
      projection: lastTransferProjection,
      batchSize: 50,
      idlePollMs: 20,
    });
    runner.start();
    const streams = Array.from({ length: 6 }, () => `async-${randomUUID()}`);
    try {
      await Promise.all(
        streams.map(async (stream) => {
          for (let version = 0; version < 20; version += 1) {
            await harness.store.append(
              stream,
              version,
              transferEvents([{ from: 'a', to: 'b', amountMicros: 1n }]),
            );
          }
        }),
      );
      const head = await logHead(harness.store);
      await waitFor('async projection caught up', () => catchUpDone(head.globalPosition), {
        timeoutMs: 15_000,
      });
    } finally {
      await runner.stop();
    }
    const live = await tableRows(harness.store.liveTarget, 'last_transfer', 'stream_id');
    const rebuilt = await rebuildProjection({
      store: harness.store,
      projection: lastTransferProjection,
      suffix: '_rebuild_async',
    });
    expect(await tableRows(rebuilt.target, 'last_transfer', 'stream_id')).toEqual(live);
    const ours = (live as Array<{ stream_id: string; last_version: number }>).filter((row) =>
      streams.includes(row.stream_id),
    );
    expect(ours.map((row) => row.last_version)).toEqual(streams.map(() => 20));
  });

  it('catchUp applies a projection to a chosen target up to the head, in bounded batches', async () => {
    const target = projectionTarget(harness.schema, '_shadow');
    await createProjectionTables(harness.dataSource, balances, target);
    const outcome = await catchUp({ store: harness.store, projection: balances, target, batchSize: 100 });
    expect(outcome.applied).toBeGreaterThan(100);
    expect(await tableRows(target, 'balances', 'account_id')).toEqual(
      await tableRows(harness.store.liveTarget, 'balances', 'account_id'),
    );
    const again = await catchUp({ store: harness.store, projection: balances, target, batchSize: 100 });
    expect(again.applied).toBe(0);
  });
});

/** Like Promise.all, but waits for every writer before failing, so none keeps running later. */
async function settleAll(promises: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/** True when every event appended so far (by position) is covered by the live checkpoint. */
async function catchUpDone(headPosition: number): Promise<boolean> {
  const rows: Array<{ pending: number }> = await harness.dataSource.query(
    `SELECT count(*)::int AS pending FROM casino.events e, casino.projection_checkpoints c
     WHERE c.name = 'last_transfer' AND e.global_position <= $1
       AND (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)`,
    [headPosition],
  );
  return rows[0]!.pending === 0;
}
