import { jetstream, jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { deadLetterStream, eventStreamDefaults, eventStreams, SubjectPrefix } from '@pf/contracts';
// eslint-disable-next-line @nx/enforce-module-boundaries -- only tests use the shared harness (real NATS, per-run prefix)
import { connectTestNats, deletePrefixedStreams, testNatsPrefix } from '@pf/testing';
import { encodeJson } from './codec.js';
import {
  consumerConfig,
  defaultEventConsumerSettings,
  durableName,
  ensureConsumer,
  retryDelayMs,
} from './event-consumer.js';
import { createOrderedReader } from './ordered-reader.js';
import { ensureStreams, filterCovers, streamForPattern } from './streams.js';

const prefix = new SubjectPrefix(testNatsPrefix());
let connection: NatsConnection;
let manager: JetStreamManager;

beforeAll(async () => {
  connection = await connectTestNats();
  manager = await jetstreamManager(connection);
});

afterAll(async () => {
  await deletePrefixedStreams(connection, prefix.value);
  await connection.drain();
});

describe('ensureStreams', () => {
  it('creates the contract streams and the dead-letter stream, then is a no-op', async () => {
    const first = await ensureStreams(connection, prefix);
    expect(first.map((result) => result.action)).toEqual([
      'created',
      'created',
      'created',
      'created',
      'created',
    ]);
    expect(first.map((result) => result.name)).toEqual(
      [
        eventStreams.casino.name,
        eventStreams.faucet.name,
        eventStreams.escrow.name,
        eventStreams.market.name,
        deadLetterStream.name,
      ].map((name) => prefix.streamName(name)),
    );
    const again = await ensureStreams(connection, prefix);
    expect(again.every((result) => result.action === 'unchanged')).toBe(true);

    const { config } = await manager.streams.info(prefix.streamName(eventStreams.escrow.name));
    expect(config).toMatchObject({
      subjects: [prefix.subject('escrow.events.>')],
      storage: 'file',
      retention: 'limits',
      discard: 'old',
      duplicate_window: nanos(eventStreamDefaults.duplicateWindowMs),
      max_age: nanos(eventStreamDefaults.maxAgeMs),
    });
    const dead = await manager.streams.info(prefix.streamName(deadLetterStream.name));
    expect(dead.config.subjects).toEqual([prefix.subject('dlq.>')]);
  });

  it('updates a stream whose settings changed, and only that', async () => {
    const streams = [eventStreams.faucet];
    await ensureStreams(connection, prefix, { streams });
    const changed = await ensureStreams(connection, prefix, {
      streams,
      settings: { duplicateWindowMs: 30_000 },
    });
    expect(changed).toEqual([
      { name: prefix.streamName(eventStreams.faucet.name), action: 'updated' },
      { name: prefix.streamName(deadLetterStream.name), action: 'updated' },
    ]);
    const { config } = await manager.streams.info(prefix.streamName(eventStreams.faucet.name));
    expect(config.duplicate_window).toBe(nanos(30_000));
    const settled = await ensureStreams(connection, prefix, {
      streams,
      settings: { duplicateWindowMs: 30_000 },
    });
    expect(settled.every((result) => result.action === 'unchanged')).toBe(true);
    await ensureStreams(connection, prefix, { streams });
  });

  it('refuses to change what cannot change in place (storage)', async () => {
    const streams = [{ name: 'MEMORY_STREAM', subjects: 'memory.events.>' }];
    await manager.streams.add({
      name: prefix.streamName('MEMORY_STREAM'),
      subjects: [prefix.subject('memory.events.>')],
      storage: StorageType.Memory,
    });
    await expect(ensureStreams(connection, prefix, { streams })).rejects.toThrow(
      /storage is memory, wanted file/,
    );
  });
});

describe('ensureConsumer', () => {
  it('creates a durable once and updates its changeable settings in place', async () => {
    await ensureStreams(connection, prefix);
    const stream = prefix.streamName(eventStreams.casino.name);
    const base = { durable: durableName('ops', 'casino.events.>'), pattern: 'casino.events.>', prefix };
    const settings = { ...defaultEventConsumerSettings, maxDeliver: 5 };
    await ensureConsumer(manager, stream, consumerConfig({ ...base, settings }));
    await ensureConsumer(manager, stream, consumerConfig({ ...base, settings }));
    await ensureConsumer(
      manager,
      stream,
      consumerConfig({ ...base, settings: { ...settings, maxDeliver: 7, ackWaitMs: 10_000 } }),
    );
    const info = await manager.consumers.info(stream, base.durable);
    expect(info.config).toMatchObject({
      ack_policy: 'explicit',
      max_deliver: 8,
      ack_wait: nanos(10_000),
      filter_subject: prefix.subject('casino.events.>'),
      deliver_policy: 'all',
    });
  });
});

describe('createOrderedReader', () => {
  it('reads a stream in order from a sequence up to its current end', async () => {
    await ensureStreams(connection, prefix);
    const js = jetstream(connection);
    const sequences: number[] = [];
    for (const type of ['a', 'b', 'c']) {
      const ack = await js.publish(prefix.subject(`escrow.events.replay_${type}`), encodeJson({ type }));
      sequences.push(ack.seq);
    }
    const read: Array<{ subject: string; sequence: number; type: string }> = [];
    for await (const message of createOrderedReader(connection, prefix, eventStreams.escrow.name, {
      fromSequence: sequences[1],
    })) {
      read.push({
        subject: message.subject,
        sequence: message.sequence,
        type: message.json<{ type: string }>().type,
      });
    }
    expect(read).toEqual([
      { subject: 'escrow.events.replay_b', sequence: sequences[1], type: 'b' },
      { subject: 'escrow.events.replay_c', sequence: sequences[2], type: 'c' },
    ]);

    const filtered: string[] = [];
    const reader = createOrderedReader(connection, prefix, eventStreams.escrow.name, {
      filterSubject: 'escrow.events.replay_a',
    });
    for await (const message of reader) filtered.push(message.subject);
    expect(filtered).toEqual(['escrow.events.replay_a']);

    const beyond = createOrderedReader(connection, prefix, eventStreams.escrow.name, {
      fromSequence: sequences[2] + 1,
    });
    for await (const _message of beyond) throw new Error('read past the end');
  });
});

describe('subject helpers', () => {
  it('knows which filter covers which pattern', () => {
    expect(filterCovers('casino.events.>', 'casino.events.funded')).toBe(true);
    expect(filterCovers('casino.events.>', 'casino.events.>')).toBe(true);
    expect(filterCovers('casino.events.>', 'casino.events.*')).toBe(true);
    expect(filterCovers('casino.events.>', 'casino.events')).toBe(false);
    expect(filterCovers('casino.events.>', 'casino.>')).toBe(false);
    expect(filterCovers('casino.*.x', 'casino.events.x')).toBe(true);
    expect(filterCovers('casino.*.x', 'casino.events.y')).toBe(false);
    expect(streamForPattern('escrow.events.funded')).toEqual(eventStreams.escrow);
    expect(() => streamForPattern('escrow.cmd.hold')).toThrow(/no event stream/);
  });

  it('derives durable names and retry delays', () => {
    expect(durableName('faucet', 'casino.events.>')).toBe('faucet__casino-events-all');
    expect(durableName('escrow', 'casino.events.*')).toBe('escrow__casino-events-any');
    expect(() => durableName('bad group', 'casino.events.x')).toThrow();
    const delays = { retryDelayInitialMs: 100, retryDelayMaxMs: 1_000 };
    expect([1, 2, 3, 4, 5, 50].map((deliveries) => retryDelayMs(deliveries, delays))).toEqual([
      100, 200, 400, 800, 1_000, 1_000,
    ]);
  });
});

describe('test cleanup (deletePrefixedStreams)', () => {
  it("deletes the run's own streams and leaves another live run's alone", async () => {
    const mine = testNatsPrefix();
    const other = testNatsPrefix();
    await manager.streams.add({
      name: `${mine}_CLEANUP`,
      subjects: [`${mine}.cleanup.>`],
      storage: StorageType.Memory,
    });
    await manager.streams.add({
      name: `${other}_CLEANUP`,
      subjects: [`${other}.cleanup.>`],
      storage: StorageType.Memory,
    });
    try {
      await deletePrefixedStreams(connection, mine);
      await expect(manager.streams.info(`${mine}_CLEANUP`)).rejects.toThrow(/stream not found/i);
      await expect(manager.streams.info(`${other}_CLEANUP`)).resolves.toMatchObject({
        config: { name: `${other}_CLEANUP` },
      });
    } finally {
      await deletePrefixedStreams(connection, other);
    }
  });
});
