import { randomUUID } from 'node:crypto';
import { DomainError } from '@pf/contracts';
import { waitFor } from '@pf/testing';
import type { DataSource } from 'typeorm';
import { VersionConflictError } from './errors.js';
import { EventStore } from './event-store.js';
import { openStoreHarness, type StoreHarness } from './test-harness.js';
import { LOG_START, logPositionOf, type LogPosition, type NewEvent } from './types.js';

let harness: StoreHarness;
let store: EventStore;

beforeAll(async () => {
  harness = await openStoreHarness('eventstore', { poolMax: 6 });
  store = harness.store;
});

afterAll(async () => {
  await harness?.close();
});

function event(type = 'noted', data: Record<string, unknown> = {}): NewEvent {
  return { eventId: randomUUID(), type, data };
}

function conflictOf(result: PromiseSettledResult<unknown>): VersionConflictError | undefined {
  return result.status === 'rejected' && result.reason instanceof VersionConflictError
    ? result.reason
    : undefined;
}

describe('append and read', () => {
  it('appends with versions, positions and metadata, and reads the stream back', async () => {
    const stream = `s-${randomUUID()}`;
    const first = await store.append(stream, 0, [event('opened', { amountMicros: 5n }), event('noted')]);
    expect(first.streamVersion).toBe(2);
    expect(first.events.map((e) => e.streamVersion)).toEqual([1, 2]);
    expect(first.events[1]!.globalPosition).toBeGreaterThan(first.events[0]!.globalPosition);
    expect(first.events[0]!.data).toEqual({ amountMicros: '5' });

    await store.append(stream, 2, [
      { ...event('closed'), metadata: { correlationId: 'c-1', schemaVersion: 2 } },
    ]);
    const read = await store.readStream(stream);
    expect(read.map((e) => [e.type, e.streamVersion])).toEqual([
      ['opened', 1],
      ['noted', 2],
      ['closed', 3],
    ]);
    expect(read[0]!.data).toEqual({ amountMicros: '5' });
    expect(read[2]!.metadata).toEqual({ correlationId: 'c-1', schemaVersion: 2 });
    expect(read[0]!.recordedAt).toBeInstanceOf(Date);
  });

  it('refuses a wrong expected version with a typed conflict', async () => {
    const stream = `s-${randomUUID()}`;
    await store.append(stream, 0, [event()]);
    const attempts = await Promise.allSettled([
      store.append(stream, 0, [event()]),
      store.append(stream, 5, [event()]),
    ]);
    for (const attempt of attempts) {
      const conflict = conflictOf(attempt);
      expect(conflict?.code).toBe('version_conflict');
      expect(conflict?.actualVersion).toBe(1);
    }
    expect((await store.readStream(stream)).length).toBe(1);
  });

  it("appends with 'any' and rejects invalid input before touching the database", async () => {
    const stream = `s-${randomUUID()}`;
    await store.append(stream, 'any', [event()]);
    const second = await store.append(stream, 'any', [event(), event()]);
    expect(second.streamVersion).toBe(3);
    await expect(store.append(stream, 'any', [{ eventId: 'nope', type: 'x', data: {} }])).rejects.toThrow(
      DomainError,
    );
    await expect(store.append(stream, 'any', [event('has.dot')])).rejects.toThrow(/event type/);
    const duplicate = event();
    await expect(store.append(stream, 'any', [duplicate, duplicate])).rejects.toThrow(/twice/);
  });

  it('re-appending the same event ids is a no-op that returns the original positions', async () => {
    const stream = `s-${randomUUID()}`;
    const events = [event('a'), event('b')];
    const original = await store.append(stream, 0, events);
    await store.append(stream, 2, [event('c')]);
    const replay = await store.append(stream, 0, events);
    expect(replay.idempotentReplay).toBe(true);
    expect(replay.events.map((e) => e.globalPosition)).toEqual(original.events.map((e) => e.globalPosition));
    expect(replay.events.map((e) => e.streamVersion)).toEqual([1, 2]);
    expect((await store.readStream(stream)).length).toBe(3);
    const [outboxRows] = await harness.dataSource.query(
      `SELECT count(*)::int AS n FROM casino.outbox o JOIN casino.events e USING (global_position) WHERE e.stream_id = $1`,
      [stream],
    );
    expect(outboxRows.n).toBe(3);
    // The same ids mixed with new ones, or in another stream, are a caller bug.
    await expect(store.append(stream, 3, [events[0]!, event()])).rejects.toMatchObject({
      code: 'event_id_reused',
    });
    await expect(store.append(stream, 3, [event(), events[1]!])).rejects.toMatchObject({
      code: 'event_id_reused',
    });
    expect((await store.readStream(stream)).length).toBe(3);
    await expect(store.append(`other-${stream}`, 0, events)).rejects.toMatchObject({
      code: 'event_id_reused',
    });
  });

  it('appendInTransaction commits with the caller and rolls back with it', async () => {
    const stream = `s-${randomUUID()}`;
    await expect(
      store.transaction(async (runner) => {
        await store.appendInTransaction(runner, stream, 0, [event()]);
        throw new Error('caller fails after the append');
      }),
    ).rejects.toThrow('caller fails');
    expect(await store.readStream(stream)).toEqual([]);
    await store.transaction((runner) => store.appendInTransaction(runner, stream, 0, [event()]));
    expect((await store.readStream(stream)).length).toBe(1);
    const runner = harness.dataSource.createQueryRunner();
    await expect(store.appendInTransaction(runner, stream, 1, [event()])).rejects.toThrow(
      /inside a transaction/,
    );
    await runner.release();
  });
});

describe('optimistic concurrency', () => {
  it('two connections appending with the same expected version: exactly one wins, every round', async () => {
    const [left, right] = [await harness.openDataSource(1), await harness.openDataSource(1)];
    const stores = [left, right].map((dataSource) => new EventStore({ dataSource, schema: harness.schema }));
    const stream = `race-${randomUUID()}`;
    const rounds = 150;
    let version = 0;
    for (let round = 0; round < rounds; round += 1) {
      const results = await Promise.allSettled(
        stores.map((racer) => racer.append(stream, version, [event('raced')])),
      );
      const winners = results.filter((result) => result.status === 'fulfilled');
      const losers = results.map(conflictOf).filter(Boolean);
      expect(winners.length).toBe(1);
      expect(losers.length).toBe(1);
      version += 1;
    }
    const events = await store.readStream(stream);
    expect(events.map((e) => e.streamVersion)).toEqual(
      Array.from({ length: rounds }, (_, index) => index + 1),
    );
    await Promise.all([left.destroy(), right.destroy()]);
  });
});

describe('immutability', () => {
  it.each([
    ['UPDATE', `UPDATE casino.events SET type = 'rewritten'`],
    ['DELETE', 'DELETE FROM casino.events'],
    ['TRUNCATE', 'TRUNCATE casino.events'],
    ['TRUNCATE CASCADE', 'TRUNCATE casino.events CASCADE'],
  ])('%s on the log fails', async (_operation, statement) => {
    await store.append(`s-${randomUUID()}`, 0, [event()]);
    const before = await harness.dataSource.query('SELECT count(*)::int AS n FROM casino.events');
    await expect(harness.dataSource.query(statement)).rejects.toThrow(/events are immutable/);
    expect(await harness.dataSource.query('SELECT count(*)::int AS n FROM casino.events')).toEqual(before);
  });
});

describe('readers never skip a slow transaction', () => {
  /** Reads everything after `from`, like a checkpointed subscriber. */
  async function readFrom(from: LogPosition) {
    const events = await store.readAll({ after: from, limit: 10_000 });
    return { events, next: events.length ? logPositionOf(events[events.length - 1]!) : from };
  }

  async function drain(): Promise<LogPosition> {
    let position = LOG_START;
    for (;;) {
      const { events, next } = await readFrom(position);
      if (events.length === 0) return position;
      position = next;
    }
  }

  it('a position taken by a transaction that commits later is read, in order, once it commits', async () => {
    const checkpoint = await drain();
    const runnerA = harness.dataSource.createQueryRunner();
    await runnerA.startTransaction('READ COMMITTED');
    const a = await store.appendInTransaction(runnerA, `long-${randomUUID()}`, 0, [event('slow')]);
    const b = await store.append(`fast-${randomUUID()}`, 0, [event('fast')]);
    expect(b.events[0]!.globalPosition).toBeGreaterThan(a.events[0]!.globalPosition);

    // While A is open, the reader sees neither A's event nor B's (after A's position).
    const whileOpen = await readFrom(checkpoint);
    const idsWhileOpen = whileOpen.events.map((e) => e.eventId);
    expect(idsWhileOpen).not.toContain(a.events[0]!.eventId);
    expect(idsWhileOpen).not.toContain(b.events[0]!.eventId);

    await runnerA.commitTransaction();
    await runnerA.release();
    // Another database's open transaction can hold the cluster-wide xmin back for a moment.
    const after = await waitFor('A and B readable', async () => {
      const read = await readFrom(whileOpen.next);
      const ids = read.events.map((e) => e.eventId);
      return ids.includes(a.events[0]!.eventId) && ids.includes(b.events[0]!.eventId) ? ids : undefined;
    });
    expect(after.indexOf(a.events[0]!.eventId)).toBeLessThan(after.indexOf(b.events[0]!.eventId));
  });

  it('a transaction that wrote something else first and appends later is not skipped either', async () => {
    const checkpoint = await drain();
    // C gets its transaction id first (any write does), appends only after D has committed.
    const runnerC = harness.dataSource.createQueryRunner();
    await runnerC.startTransaction('READ COMMITTED');
    await runnerC.query(`INSERT INTO casino.inbox (consumer, event_id) VALUES ('early-writer', $1)`, [
      randomUUID(),
    ]);
    const d = await store.append(`d-${randomUUID()}`, 0, [event('d')]);
    const c = await store.appendInTransaction(runnerC, `c-${randomUUID()}`, 0, [event('c')]);
    expect(c.events[0]!.globalPosition).toBeGreaterThan(d.events[0]!.globalPosition);

    const whileOpen = await readFrom(checkpoint);
    expect(whileOpen.events.map((e) => e.eventId)).not.toContain(d.events[0]!.eventId);
    await runnerC.commitTransaction();
    await runnerC.release();
    const ids = await waitFor('C and D readable', async () => {
      const read = await readFrom(whileOpen.next);
      const found = read.events.map((e) => e.eventId);
      return found.includes(c.events[0]!.eventId) && found.includes(d.events[0]!.eventId) ? found : undefined;
    });
    // Transaction order: C (older transaction) first, although its position is higher.
    expect(ids.indexOf(c.events[0]!.eventId)).toBeLessThan(ids.indexOf(d.events[0]!.eventId));
  });

  it('refuses to append to a stream whose last writer is a younger transaction (keeps per-stream order)', async () => {
    const stream = `order-${randomUUID()}`;
    const runnerOld = harness.dataSource.createQueryRunner();
    await runnerOld.startTransaction('READ COMMITTED');
    await runnerOld.query(`INSERT INTO casino.inbox (consumer, event_id) VALUES ('early-writer', $1)`, [
      randomUUID(),
    ]);
    await store.append(stream, 0, [event('first')]);
    await expect(store.appendInTransaction(runnerOld, stream, 1, [event('second')])).rejects.toMatchObject({
      code: 'version_conflict',
      reason: 'transaction_order',
    });
    await runnerOld.rollbackTransaction();
    await runnerOld.release();
    // The retry, in a new transaction, goes through.
    await store.transaction((runner) => store.appendInTransaction(runner, stream, 1, [event('second')]));
    expect((await store.readStream(stream)).map((e) => e.type)).toEqual(['first', 'second']);
  });
});

describe('pipelined append (append, statements after it and COMMIT in one round trip)', () => {
  const noted = async (stream: string) => (await store.readStream(stream)).map((e) => e.type);

  it('a stream off its expected version raises, so the statements after it and the COMMIT do not go through', async () => {
    const [a, b] = [`pipe-a-${randomUUID()}`, `pipe-b-${randomUUID()}`];
    await store.append(a, 0, [event('first')]);
    const append = store.prepareAppendMany([
      { streamId: a, expectedVersion: 0, events: [event('stale')] },
      { streamId: b, expectedVersion: 0, events: [event('fresh')] },
    ])!;
    const [transaction] = await store.beginPipelined([]);
    const marker = randomUUID();
    const failure = await transaction
      .commit([
        append.statement,
        { text: `INSERT INTO casino.inbox (consumer, event_id) VALUES ('pipe-test', $1)`, values: [marker] },
      ])
      .then(
        () => undefined,
        (error: unknown) => append.failure(error),
      );
    expect(failure).toBeInstanceOf(VersionConflictError);
    expect(failure).toMatchObject({ code: 'version_conflict', reason: 'version_mismatch', streamId: a });
    expect(await noted(a)).toEqual(['first']);
    expect(await noted(b)).toEqual([]);
    expect(
      await harness.dataSource.query(`SELECT 1 FROM casino.inbox WHERE event_id = $1`, [marker]),
    ).toHaveLength(0);
  });

  it('on the expected versions it commits every stream, and the later statements see the new events by id', async () => {
    const [a, b] = [`pipe-a-${randomUUID()}`, `pipe-b-${randomUUID()}`];
    await store.append(a, 0, [event('first')]);
    const append = store.prepareAppendMany([
      { streamId: a, expectedVersion: 1, events: [event('second')] },
      { streamId: b, expectedVersion: 0, events: [event('one'), event('two')] },
    ])!;
    expect(append.pending.map((pending) => [pending.streamId, pending.type])).toEqual([
      [a, 'second'],
      [b, 'one'],
      [b, 'two'],
    ]);
    const [transaction] = await store.beginPipelined([]);
    const [appended, seen] = await transaction.commit([
      append.statement,
      {
        text: 'SELECT global_position::text AS position FROM casino.events WHERE event_id = ANY($1::uuid[]) ORDER BY global_position',
        values: [append.pending.map((p) => p.eventId)],
      },
    ]);
    const recorded = append.recorded(appended!.rows as never);
    expect(recorded.map((e) => [e.streamId, e.streamVersion, e.type])).toEqual([
      [a, 2, 'second'],
      [b, 1, 'one'],
      [b, 2, 'two'],
    ]);
    expect(seen!.rows.map((row: { position: string }) => Number(row.position))).toEqual(
      recorded.map((e) => e.globalPosition),
    );
    expect(await noted(b)).toEqual(['one', 'two']);
  });
});

describe('the whole log', () => {
  it('readAll pages through every event once, strictly in (transaction id, position) order', async () => {
    // One transaction whose positions cross a power of ten ('99' > '100' as text), so a sort
    // on the text form of the position would show.
    const [{ head }] = await harness.dataSource.query(
      'SELECT coalesce(max(global_position), 0)::int AS head FROM casino.events',
    );
    const needed = 10 ** String(head + 1).length - head + 5;
    await store.transaction(async (runner) => {
      for (let remaining = needed; remaining > 0; remaining -= 1_000) {
        const count = Math.min(remaining, 1_000);
        await store.appendInTransaction(
          runner,
          `wide-${randomUUID()}`,
          0,
          Array.from({ length: count }, () => event()),
        );
      }
    });
    const [{ total }] = await harness.dataSource.query('SELECT count(*)::int AS total FROM casino.events');
    const seen = new Set<string>();
    let previous = LOG_START;
    await waitFor('all events readable', async () => {
      for (;;) {
        const batch = await store.readAll({ after: previous, limit: 7 });
        if (batch.length === 0) return seen.size === total;
        for (const recorded of batch) {
          const byTransaction = BigInt(recorded.transactionId) - BigInt(previous.transactionId);
          expect(
            byTransaction > 0n || (byTransaction === 0n && recorded.globalPosition > previous.globalPosition),
          ).toBe(true);
          expect(seen.has(recorded.eventId)).toBe(false);
          seen.add(recorded.eventId);
          previous = logPositionOf(recorded);
        }
      }
    });
  });
});

describe('migrations', () => {
  it('names the migration after the schema and records it once', async () => {
    const rows: Array<{ name: string }> = await harness.dataSource.query(
      'SELECT name FROM casino.migrations',
    );
    expect(rows.map((row) => row.name)).toEqual([
      'EventStoreCasino1730000000000',
      'EventStoreFailCasino1764100000000',
    ]);
    expect(await (harness.dataSource as DataSource).runMigrations({ transaction: 'each' })).toEqual([]);
  });
});
