import { randomUUID } from 'node:crypto';
import { PgInbox } from './inbox.js';
import { openStoreHarness, type StoreHarness } from './test-harness.js';

let harness: StoreHarness;
let inbox: PgInbox;

beforeAll(async () => {
  harness = await openStoreHarness('inbox', { poolMax: 4 });
  inbox = new PgInbox(harness.store);
});

afterAll(async () => {
  await harness?.close();
});

async function effects(eventId: string): Promise<number> {
  const rows: Array<{ n: number }> = await harness.dataSource.query(
    `SELECT count(*)::int AS n FROM casino.events WHERE stream_id = $1`,
    [`effect-${eventId}`],
  );
  return rows[0]!.n;
}

/** The handler's write: an append in the inbox transaction, so it commits with the inbox row. */
function handler(eventId: string) {
  return async (runner: Parameters<Parameters<PgInbox['runOnce']>[2]>[0]) => {
    await harness.store.appendInTransaction(runner, `effect-${eventId}`, 'any', [
      { eventId: randomUUID(), type: 'handled', data: {} },
    ]);
  };
}

describe('PgInbox', () => {
  it('runs the handler once per consumer and event id; a redelivery is a duplicate', async () => {
    const eventId = randomUUID();
    expect(await inbox.runOnce('casino.escrow-listener', eventId, handler(eventId))).toBe('processed');
    expect(await inbox.runOnce('casino.escrow-listener', eventId, handler(eventId))).toBe('duplicate');
    expect(await effects(eventId)).toBe(1);
    // Another consumer of the same event has its own record.
    expect(await inbox.runOnce('faucet.listener', eventId, async () => undefined)).toBe('processed');
  });

  it('a failing handler leaves no inbox row and no effect, so the redelivery runs it again', async () => {
    const eventId = randomUUID();
    await expect(
      inbox.runOnce('c', eventId, async (runner) => {
        await handler(eventId)(runner);
        throw new Error('handler failed after writing');
      }),
    ).rejects.toThrow('handler failed');
    expect(await effects(eventId)).toBe(0);
    expect(await inbox.runOnce('c', eventId, handler(eventId))).toBe('processed');
    expect(await effects(eventId)).toBe(1);
  });

  it('concurrent deliveries of one event: exactly one processes it', async () => {
    for (let round = 0; round < 10; round += 1) {
      const eventId = randomUUID();
      const outcomes = await Promise.all([1, 2, 3].map(() => inbox.runOnce('c', eventId, handler(eventId))));
      expect(outcomes.filter((outcome) => outcome === 'processed').length).toBe(1);
      expect(await effects(eventId)).toBe(1);
    }
  });
});
