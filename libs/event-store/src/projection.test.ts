import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import {
  createProjectionTables,
  projectionTarget,
  type Projection,
  type ProjectionTarget,
} from './projection.js';
import { openStoreHarness, type StoreHarness } from './test-harness.js';
import { TRANSFERRED_EVENT_TYPE, transferBalancesProjection } from './transfer-balances.projection.js';
import { LOG_START, logPositionOf, type NewEvent } from './types.js';

const balances = transferBalancesProjection();
let harness: StoreHarness;

beforeAll(async () => {
  harness = await openStoreHarness('projection', {
    poolMax: 6,
    storeOptions: { inlineProjections: [balances] },
  });
  await createProjectionTables(harness.dataSource, balances, harness.store.liveTarget);
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
        const rebuilt = await rebuild(balances, `_rebuild_${rebuilds}`, 500);
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
});

/** Like Promise.all, but waits for every writer before failing, so none keeps running later. */
async function settleAll(promises: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/**
 * Applies the whole log, batch by batch, to fresh tables with the projection's own `apply`
 * (what ops replay does, without its swap). Writers have settled, so reading up to the head
 * skips nothing.
 */
async function rebuild(
  projection: Projection,
  suffix: string,
  batchSize: number,
): Promise<{ target: ProjectionTarget }> {
  const target = projectionTarget(harness.schema, suffix);
  await createProjectionTables(harness.dataSource, projection, target);
  // readAll stops below the oldest transaction still running anywhere on the server (other
  // suites share it): read on until it has handed out every event in the log.
  const [{ total }]: Array<{ total: number }> = await harness.dataSource.query(
    `SELECT count(*)::int AS total FROM ${harness.schema}.events`,
  );
  let after = LOG_START;
  let read = 0;
  for (let waits = 0; ;) {
    const events = await harness.store.readAll({ after, limit: batchSize });
    if (events.length === 0) {
      if (read >= total || waits >= 400) return { target };
      waits += 1;
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    await harness.store.transaction((runner) => projection.apply(runner, events, target));
    read += events.length;
    after = logPositionOf(events[events.length - 1]!);
  }
}
