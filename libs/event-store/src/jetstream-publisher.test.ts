import { randomUUID } from 'node:crypto';
import { SubjectPrefix } from '@pf/contracts';
import { connectTestNats, deletePrefixedStreams, testNatsPrefix } from '@pf/testing';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { headers, nanos, type NatsConnection } from '@nats-io/nats-core';
import { JetStreamBatchPublisher, parseAck, type OutgoingMessage } from './jetstream-publisher.js';

/** The relay's publisher against a real JetStream: every message acked, or the batch fails. */
describe('JetStreamBatchPublisher (real NATS JetStream)', () => {
  let connection: NatsConnection;
  let manager: JetStreamManager;
  const prefixValue = testNatsPrefix();
  const prefix = new SubjectPrefix(prefixValue);
  const streamName = prefix.streamName('PUBLISHER');
  const encoder = new TextEncoder();

  const messages = (count: number, subject = prefix.subject('pub.events.x')): OutgoingMessage[] =>
    Array.from({ length: count }, (_, index) => ({
      subject,
      payload: encoder.encode(JSON.stringify({ index })),
      msgId: randomUUID(),
    }));

  beforeAll(async () => {
    connection = await connectTestNats();
    manager = await jetstreamManager(connection);
    await manager.streams.add({
      name: streamName,
      subjects: [prefix.subject('pub.events.>')],
      duplicate_window: nanos(120_000),
    });
  });

  afterAll(async () => {
    if (connection) {
      await deletePrefixedStreams(connection, prefixValue);
      await connection.close();
    }
  });

  it('stores a batch in order and answers one ack per message; a resend of the same ids is acked as duplicates', async () => {
    const publisher = new JetStreamBatchPublisher(connection, { timeoutMs: 5_000 });
    try {
      const batch = messages(50);
      const acks = await publisher.publish(batch);
      expect(acks).toHaveLength(50);
      expect(acks.every((ack) => ack.stream === streamName && !ack.duplicate)).toBe(true);
      const first = acks[0]!.seq;
      expect(acks.map((ack) => ack.seq)).toEqual(batch.map((_, index) => first + index));
      for (const [index, ack] of acks.entries()) {
        const stored = await manager.streams.getMessage(streamName, { seq: ack.seq });
        expect(stored!.json<{ index: number }>()).toEqual({ index });
      }

      const again = await publisher.publish(batch);
      expect(again.map((ack) => ack.duplicate)).toEqual(batch.map(() => true));
      expect((await manager.streams.info(streamName)).state.last_seq).toBe(acks.at(-1)!.seq);
    } finally {
      publisher.close();
    }
  });

  it('keeps the acks of concurrent batches apart', async () => {
    const publisher = new JetStreamBatchPublisher(connection, { timeoutMs: 5_000 });
    try {
      const batches = [messages(20), messages(7), messages(33)];
      const results = await Promise.all(batches.map((batch) => publisher.publish(batch)));
      for (const [index, acks] of results.entries()) expect(acks).toHaveLength(batches[index]!.length);
      const seqs = results.flat().map((ack) => ack.seq);
      expect(new Set(seqs).size).toBe(60);
    } finally {
      publisher.close();
    }
  });

  it('fails the batch when no stream captures a subject', async () => {
    const publisher = new JetStreamBatchPublisher(connection, { timeoutMs: 5_000 });
    try {
      const batch = [...messages(2), ...messages(1, prefix.subject('nowhere.events.x'))];
      await expect(publisher.publish(batch)).rejects.toThrow(/JetStream refused the message: 503/);
    } finally {
      publisher.close();
    }
  });

  it('fails the batch when the message would land in another stream than expected', async () => {
    const publisher = new JetStreamBatchPublisher(connection, {
      timeoutMs: 5_000,
      expectedStream: `${streamName}_OTHER`,
    });
    try {
      await expect(publisher.publish(messages(3))).rejects.toThrow(/JetStream refused the message: 400/);
    } finally {
      publisher.close();
    }
  });

  it('fails the batch when an ack does not come in time, and goes on working', async () => {
    // A plain subscriber on the subject is a responder that never acks: no 503, no ack.
    const silent = connection.subscribe(prefix.subject('silent.x'), { callback: () => undefined });
    const publisher = new JetStreamBatchPublisher(connection, { timeoutMs: 200 });
    try {
      const started = Date.now();
      await expect(publisher.publish(messages(2, prefix.subject('silent.x')))).rejects.toThrow(
        /did not ack 2 of 2 messages within 200 ms/,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
      // The publisher still works afterwards.
      expect(await publisher.publish(messages(2))).toHaveLength(2);
    } finally {
      silent.unsubscribe();
      publisher.close();
    }
  });

  it('a closed publisher fails what still waits', async () => {
    const silent = connection.subscribe(prefix.subject('silent.y'), { callback: () => undefined });
    const publisher = new JetStreamBatchPublisher(connection, { timeoutMs: 5_000 });
    try {
      const pending = publisher.publish(messages(1, prefix.subject('silent.y')));
      publisher.close();
      await expect(pending).rejects.toThrow(/publisher closed/);
    } finally {
      silent.unsubscribe();
    }
  });
});

describe('parseAck', () => {
  const encode = (value: unknown) =>
    new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

  it('reads an ack, a duplicate and an error', () => {
    expect(parseAck({ data: encode({ stream: 'S', seq: 7 }) })).toEqual({
      stream: 'S',
      seq: 7,
      duplicate: false,
    });
    expect(parseAck({ data: encode({ stream: 'S', seq: 7, duplicate: true }) })).toEqual({
      stream: 'S',
      seq: 7,
      duplicate: true,
    });
    expect(
      String(
        parseAck({
          data: encode({ error: { code: 503, err_code: 10077, description: 'maximum messages exceeded' } }),
        }),
      ),
    ).toMatch(/503\/10077 maximum messages exceeded/);
  });

  it('refuses what is not an ack', () => {
    expect(parseAck({ data: encode('not json') })).toBeInstanceOf(Error);
    expect(parseAck({ data: encode({ stream: '', seq: 1 }) })).toBeInstanceOf(Error);
    expect(parseAck({ data: encode({ stream: 'S', seq: 0 }) })).toBeInstanceOf(Error);
    expect(parseAck({ data: encode({ stream: 'S', seq: '1' }) })).toBeInstanceOf(Error);
    expect(parseAck({ data: encode({}) })).toBeInstanceOf(Error);
  });

  it('reads a status-only reply as a refusal', () => {
    const status = headers(503, 'No Responders');
    expect(String(parseAck({ data: new Uint8Array(), headers: status }))).toMatch(/503 No Responders/);
  });
});
