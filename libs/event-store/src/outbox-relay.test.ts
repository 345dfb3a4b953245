import { randomUUID } from 'node:crypto';
import { SubjectPrefix, type EventEnvelope } from '@pf/contracts';
import { connectTestNats, deletePrefixedStreams, testNatsPrefix, waitFor } from '@pf/testing';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import pg from 'pg';
import { EventStore } from './event-store.js';
import { eventStoreMigrations } from './migrations.js';
import { OutboxRelay, outboxRelayStatements, type OutboxRelayOptions } from './outbox-relay.js';
import { openStoreHarness, type StoreHarness } from './test-harness.js';
import type { NewEvent } from './types.js';

let harness: StoreHarness;
let connection: NatsConnection;
let manager: JetStreamManager;
const prefixValue = testNatsPrefix();
const prefix = new SubjectPrefix(prefixValue);
let streamCounter = 0;

beforeAll(async () => {
  harness = await openStoreHarness('outboxrelay', { poolMax: 6 });
  connection = await connectTestNats();
  manager = await jetstreamManager(connection);
});

afterAll(async () => {
  if (connection) {
    await deletePrefixedStreams(connection, prefixValue);
    await connection.close();
  }
  await harness?.close();
});

/** Each test gets its own schema-less log slice via a fresh stream and an empty outbox. */
async function freshStream(): Promise<string> {
  streamCounter += 1;
  const name = prefix.streamName(`CASINO_EVENTS_${streamCounter}`);
  // Only one test stream may cover the subjects at a time: delete the previous one.
  for await (const info of manager.streams.list()) {
    if (info.config.name.startsWith(`${prefixValue}_`)) await manager.streams.delete(info.config.name);
  }
  await manager.streams.add({
    name,
    subjects: [prefix.subject('casino.events.>')],
    duplicate_window: nanos(120_000),
  });
  await harness.dataSource.query('DELETE FROM casino.outbox');
  return name;
}

function relay(overrides: Partial<OutboxRelayOptions> = {}): OutboxRelay {
  return new OutboxRelay({
    store: harness.store,
    service: 'casino',
    connection,
    prefix,
    idlePollMs: 10,
    errorBackoffMs: 20,
    ...overrides,
  });
}

function newEvents(count: number): NewEvent[] {
  return Array.from({ length: count }, (_, index) => ({
    eventId: randomUUID(),
    type: index % 2 === 0 ? 'credited' : 'debited',
    data: { amountMicros: String(1_000 + index) },
    metadata: { correlationId: `corr-${index}`, causationId: `cause-${index}` },
  }));
}

async function appendMany(store: EventStore, streams: number, eventsPerStream: number): Promise<string[]> {
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: streams }, async () => {
      const stream = `acct-${randomUUID()}`;
      for (let version = 0; version < eventsPerStream; version += 1) {
        const result = await store.append(stream, version, newEvents(1));
        ids.push(result.events[0]!.eventId);
      }
    }),
  );
  return ids;
}

async function storedEnvelopes(streamName: string): Promise<EventEnvelope[]> {
  const info = await manager.streams.info(streamName);
  const envelopes: EventEnvelope[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq += 1) {
    const message = await manager.streams.getMessage(streamName, { seq });
    envelopes.push(message!.json<EventEnvelope>());
  }
  return envelopes;
}

async function outboxCount(): Promise<number> {
  const [row] = await harness.dataSource.query('SELECT count(*)::int AS n FROM casino.outbox');
  return row.n;
}

describe('outbox relay', () => {
  it('publishes each event with its envelope on <prefix>.casino.events.<type>, then empties the outbox', async () => {
    const streamName = await freshStream();
    const appended = await harness.store.append(`acct-${randomUUID()}`, 0, newEvents(3));
    const running = relay({ expectedStream: streamName });
    running.start();
    await waitFor('outbox drained', async () => (await outboxCount()) === 0);
    await running.stop();

    const envelopes = await storedEnvelopes(streamName);
    expect(envelopes.map((envelope) => envelope.id)).toEqual(appended.events.map((e) => e.eventId));
    const first = appended.events[0]!;
    expect(envelopes[0]).toEqual({
      id: first.eventId,
      type: 'credited',
      stream: first.streamId,
      version: 1,
      position: first.globalPosition,
      occurred_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      correlation_id: 'corr-0',
      causation_id: 'cause-0',
      schema: 1,
      data: { amountMicros: '1000' },
    });
    const message = await manager.streams.getMessage(streamName, { seq: 1 });
    expect(message!.subject).toBe(prefix.subject('casino.events.credited'));
    expect(message!.header.get('Nats-Msg-Id')).toBe(first.eventId);
    expect(running.stats.published).toBe(3);
    expect(running.stats.duplicates).toBe(0);
  });

  it('a relay that dies between publish and commit re-publishes after restart, and the stream keeps each event once', async () => {
    const streamName = await freshStream();
    // Committed while no relay runs (a crash between commit and publish).
    const ids = await appendMany(harness.store, 5, 8);

    let crashes = 0;
    const crashing = relay({
      batchSize: 16,
      afterPublish: async () => {
        crashes += 1;
        throw new Error('relay killed after publishing, before deleting the outbox rows');
      },
    });
    for (let pass = 0; pass < 3; pass += 1)
      await expect(crashing.publishPending()).rejects.toThrow(/relay killed/);
    expect(crashes).toBe(3);
    expect(await outboxCount()).toBe(ids.length);
    const afterCrashes = await manager.streams.info(streamName);
    expect(afterCrashes.state.messages).toBe(16);

    const restarted = relay({ batchSize: 16 });
    restarted.start();
    await waitFor('outbox drained', async () => (await outboxCount()) === 0);
    await restarted.stop();

    const envelopes = await storedEnvelopes(streamName);
    expect(envelopes.length).toBe(ids.length);
    expect(new Set(envelopes.map((envelope) => envelope.id))).toEqual(new Set(ids));
    // The first batch went out three times before: the broker recognised the re-publish.
    expect(restarted.stats.duplicates).toBe(16);
    expect(restarted.stats.published).toBe(ids.length);
  });

  it('two relays in parallel under load: no event is sent twice and per-stream order holds', async () => {
    const streamName = await freshStream();
    const secondSource = await harness.openDataSource(2);
    const secondStore = new EventStore({ dataSource: secondSource, schema: harness.schema });
    const relays = [relay({ batchSize: 20 }), relay({ store: secondStore, batchSize: 20 })];
    relays.forEach((running) => running.start());
    const ids = [...(await appendMany(harness.store, 6, 15)), ...(await appendMany(secondStore, 6, 15))];
    await waitFor('outbox drained', async () => (await outboxCount()) === 0);
    await Promise.all(relays.map((running) => running.stop()));
    await secondSource.destroy();

    const info = await manager.streams.info(streamName);
    expect(info.state.messages).toBe(ids.length);
    expect(info.state.last_seq).toBe(ids.length);
    expect(relays.reduce((sum, running) => sum + running.stats.published, 0)).toBe(ids.length);
    expect(relays.reduce((sum, running) => sum + running.stats.duplicates, 0)).toBe(0);
    const envelopes = await storedEnvelopes(streamName);
    expect(new Set(envelopes.map((envelope) => envelope.id)).size).toBe(ids.length);
    const lastVersionByStream = new Map<string, number>();
    for (const envelope of envelopes) {
      expect(envelope.version).toBe((lastVersionByStream.get(envelope.stream) ?? 0) + 1);
      lastVersionByStream.set(envelope.stream, envelope.version);
    }
  });

  it('keeps retrying while the broker refuses (no stream), then delivers everything', async () => {
    await freshStream();
    for await (const info of manager.streams.list()) {
      if (info.config.name.startsWith(`${prefixValue}_`)) await manager.streams.delete(info.config.name);
    }
    const appended = await harness.store.append(`acct-${randomUUID()}`, 0, newEvents(2));
    const running = relay({ publishTimeoutMs: 500 });
    running.start();
    await waitFor('a failed pass', () => running.stats.failedPasses > 0);
    expect(await outboxCount()).toBe(2);
    const name = prefix.streamName('CASINO_EVENTS_LATE');
    await manager.streams.add({
      name,
      subjects: [prefix.subject('casino.events.>')],
      duplicate_window: nanos(120_000),
    });
    await waitFor('outbox drained', async () => (await outboxCount()) === 0, { timeoutMs: 10_000 });
    await running.stop();
    expect((await storedEnvelopes(name)).map((envelope) => envelope.id)).toEqual(
      appended.events.map((e) => e.eventId),
    );
  });
});

describe('outbox relay round trips', () => {
  it('a pass is BEGIN with one claim-and-delete statement, then COMMIT after the acks: two round trips', async () => {
    const streamName = await freshStream();
    const appended = await harness.store.append(`acct-${randomUUID()}`, 0, newEvents(3));
    // Every query the pg clients send, with its burst: queries issued in one synchronous run
    // (before any answer could arrive) share a burst, i.e. travel in one round trip.
    const sent: Array<{ text: string; burst: number }> = [];
    let burst = 0;
    let inBurst = false;
    const original = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      if (!inBurst) {
        inBurst = true;
        burst += 1;
        queueMicrotask(() => (inBurst = false));
      }
      const config = args[0] as string | { text: string };
      sent.push({ text: typeof config === 'string' ? config : config.text, burst });
      return (original as (...rest: unknown[]) => unknown).apply(this, args);
    } as typeof original;
    let seenDuringPass = -1;
    const running = relay({
      // Claimed and deleted, but not committed: other connections still see the rows.
      afterPublish: async () => void (seenDuringPass = await outboxCount()),
    });
    try {
      expect(await running.publishPending({ skipProbe: true })).toBe(3);
    } finally {
      pg.Client.prototype.query = original;
    }
    expect(seenDuringPass).toBe(3);
    const relaySent = sent.filter((entry) => !entry.text.includes('count(*)'));
    expect(relaySent.map((entry) => entry.text.trim().split(/\s+/)[0])).toEqual(['BEGIN', 'WITH', 'COMMIT']);
    expect(new Set(relaySent.map((entry) => entry.burst)).size).toBe(2);
    expect(relaySent[0]!.burst).toBe(relaySent[1]!.burst);
    expect(await outboxCount()).toBe(0);
    expect((await storedEnvelopes(streamName)).map((envelope) => envelope.id)).toEqual(
      appended.events.map((event) => event.eventId),
    );
  });
});

describe('outbox relay claim plan', () => {
  it('looks events up by primary key even with a generic plan made while the log was empty (never a scan of the log)', async () => {
    // A service starts on an empty log and its named statement's generic plan is made then; a
    // plan that joins the whole log (hash join over a sequential scan) kept scanning it on every
    // claim as the log grew, until autovacuum's first ANALYZE.
    const runner = harness.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('CREATE SCHEMA relay_plan');
      for (const Migration of eventStoreMigrations('relay_plan')) await new Migration().up(runner);
      await runner.query('SET plan_cache_mode = force_generic_plan');
      await runner.query(`PREPARE relay_claim(text) AS ${outboxRelayStatements('relay_plan', 256).claim}`);
      const rows: Array<Record<string, string>> = await runner.query(`EXPLAIN EXECUTE relay_claim('probe')`);
      const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
      expect(plan).toMatch(/Index Scan using events_pkey on events/);
      expect(plan).not.toMatch(/Seq Scan on events|Hash Join/);
    } finally {
      await runner.query('DEALLOCATE ALL').catch(() => undefined);
      await runner.query('RESET plan_cache_mode').catch(() => undefined);
      await runner.release();
    }
  });

  it('deletes the claimed outbox rows by primary key in the same generic plan (never a scan of the queue table)', async () => {
    const runner = harness.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('CREATE SCHEMA relay_plan_delete');
      for (const Migration of eventStoreMigrations('relay_plan_delete')) await new Migration().up(runner);
      await runner.query('SET plan_cache_mode = force_generic_plan');
      await runner.query(
        `PREPARE relay_claim_delete(text) AS ${outboxRelayStatements('relay_plan_delete', 256).claim}`,
      );
      const rows: Array<Record<string, string>> = await runner.query(
        `EXPLAIN EXECUTE relay_claim_delete('probe')`,
      );
      const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
      expect(plan).toMatch(/Delete on outbox/);
      expect(plan).toMatch(/Index Cond: \(global_position = ANY/);
      expect(plan).not.toMatch(/Seq Scan on outbox|Hash (Semi )?Join/);
    } finally {
      await runner.query('DEALLOCATE ALL').catch(() => undefined);
      await runner.query('RESET plan_cache_mode').catch(() => undefined);
      await runner.release();
    }
  });
});
