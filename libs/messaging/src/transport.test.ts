import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Controller, Module, type INestMicroservice, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import {
  jetstream,
  jetstreamManager,
  type ConsumerInfo,
  type JetStreamManager,
  type StoredMsg,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import {
  deadLetterHeaders,
  deadLetterStream,
  DomainError,
  ErrorCode,
  eventStreams,
  SubjectPrefix,
  type EventEnvelope,
} from '@pf/contracts';
// eslint-disable-next-line @nx/enforce-module-boundaries -- only tests use the shared harness (real NATS, per-run prefix)
import { connectTestNats, deletePrefixedStreams, sleep, testNatsPrefix, waitFor } from '@pf/testing';
import { CommandClient } from './command-client.js';
import { encodeJson } from './codec.js';
import { NatsEventContext } from './event-context.js';
import { durableName, holdsOneSubscription, type EventConsumerSettings } from './event-consumer.js';
import type { ProcessedEventStore } from './inbox.js';
import { RpcErrorPassthroughFilter } from './rpc-error.filter.js';
import { NatsTransport, type EventPatternExtras, type NatsTransportOptions } from './transport.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const prefix = new SubjectPrefix(testNatsPrefix());
const casinoStream = prefix.streamName(eventStreams.casino.name);
const deadLetters = prefix.streamName(deadLetterStream.name);

/** Short timers so retries and dead-lettering take well under a second. */
const fastEvents: Partial<EventConsumerSettings> = {
  ackWaitMs: 2_000,
  maxDeliver: 3,
  retryDelayInitialMs: 50,
  retryDelayMaxMs: 200,
  fetchExpiresMs: 1_000,
  drainTimeoutMs: 5_000,
};

let admin: NatsConnection;
let manager: JetStreamManager;
const running: Array<{ app: INestMicroservice; connection: NatsConnection }> = [];

beforeAll(async () => {
  admin = await connectTestNats();
  manager = await jetstreamManager(admin);
});

afterEach(async () => {
  await Promise.all(running.splice(0).map(stopService));
});

afterAll(async () => {
  await deletePrefixedStreams(admin, prefix.value);
  await admin.drain();
});

/** One service replica: its own connection, a Nest microservice with the given controllers. */
async function startService(controllers: Type[], options: Partial<NatsTransportOptions> = {}) {
  const connection = await connectTestNats();
  const transport = new NatsTransport({
    connection,
    prefix,
    logger,
    consumerGroup: 'test',
    events: fastEvents,
    ...options,
  });
  @Module({ controllers })
  class TestModule {}
  const app = await NestFactory.createMicroservice(TestModule, { strategy: transport, logger: false });
  app.useGlobalFilters(new RpcErrorPassthroughFilter());
  await app.listen();
  const service = { app, connection };
  running.push(service);
  return service;
}

async function stopService(service: { app: INestMicroservice; connection: NatsConnection }): Promise<void> {
  const index = running.indexOf(service);
  if (index >= 0) running.splice(index, 1);
  await service.app.close();
  await service.connection.drain();
}

type EventBehaviour = (envelope: EventEnvelope, context: NatsEventContext) => Promise<void>;

function eventController(pattern: string, behaviour: EventBehaviour, extras: EventPatternExtras = {}): Type {
  @Controller()
  class EventController {
    // `<string>` picks Nest 12's untyped overload: its typed one refuses a typed @Ctx() argument.
    @EventPattern<string>(pattern, extras)
    async on(@Payload() envelope: EventEnvelope, @Ctx() context: NatsEventContext): Promise<void> {
      await behaviour(envelope, context);
    }
  }
  return EventController;
}

function envelope(type: string, id: string = randomUUID()): EventEnvelope {
  return {
    id,
    type,
    stream: 'agent-1',
    version: 1,
    position: 1,
    occurred_at: new Date().toISOString(),
    correlation_id: null,
    causation_id: null,
    schema: 1,
    data: { amount_micros: '1000000' },
  };
}

/** Publishes to the test's stream and answers the stream sequence. */
async function publish(subject: string, event: EventEnvelope, msgID = event.id): Promise<number> {
  const ack = await jetstream(admin).publish(prefix.subject(subject), encodeJson(event), { msgID });
  return ack.seq;
}

function consumerInfo(group: string, pattern: string): Promise<ConsumerInfo> {
  return manager.consumers.info(casinoStream, durableName(group, pattern));
}

/** Every delivered message is settled: nothing waits for an ack or a (re)delivery. */
async function waitSettled(group: string, pattern: string, expectedStreamSeq: number): Promise<ConsumerInfo> {
  return waitFor(`${group} consumer settled`, async () => {
    const info = await consumerInfo(group, pattern);
    const settled =
      info.num_ack_pending === 0 && info.num_pending === 0 && info.ack_floor.stream_seq >= expectedStreamSeq;
    return settled ? info : undefined;
  });
}

async function waitForDeadLetter(consumer: string, subject: string): Promise<StoredMsg> {
  const deadSubject = prefix.subject(`${deadLetterStream.subjects.slice(0, -1)}${consumer}.${subject}`);
  return waitFor(
    `dead letter of ${consumer}`,
    async () => (await manager.streams.getMessage(deadLetters, { last_by_subj: deadSubject })) ?? undefined,
  );
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

class InMemoryInbox implements ProcessedEventStore {
  readonly processed = new Set<string>();
  readonly outcomes: Array<'processed' | 'duplicate'> = [];

  async runOnce(
    consumer: string,
    eventId: string,
    fn: (tx: unknown) => Promise<void>,
  ): Promise<'processed' | 'duplicate'> {
    const key = `${consumer}/${eventId}`;
    if (this.processed.has(key)) {
      this.outcomes.push('duplicate');
      return 'duplicate';
    }
    // Claimed before the handler runs, as the Postgres inbox's row is: a concurrent delivery of
    // the same event (consumers run several messages at once) must see it as a duplicate.
    this.processed.add(key);
    try {
      await fn({ consumer, eventId });
    } catch (error) {
      this.processed.delete(key);
      throw error;
    }
    this.outcomes.push('processed');
    return 'processed';
  }
}

describe('commands', () => {
  const echo = 'casino.cmd.test_echo';

  function commandController(instance: string): Type {
    @Controller()
    class CommandController {
      @MessagePattern(echo)
      answer(@Payload() payload: { fail?: boolean }): { instance: string } {
        if (payload.fail) throw new DomainError(ErrorCode.notFound, 'no such agent', { agent_id: 'a1' });
        return { instance };
      }
    }
    return CommandController;
  }

  it('shares requests between replicas in one queue group, one reply each', async () => {
    await startService([commandController('a')]);
    await startService([commandController('b')]);
    const client = new CommandClient({ connection: admin, prefix, timeoutMs: 2_000 });
    const requestCount = 40;
    const replies = await Promise.all(
      Array.from({ length: requestCount }, () => client.request<{ instance: string }>(echo, {})),
    );
    const byInstance = { a: 0, b: 0 } as Record<string, number>;
    for (const reply of replies) byInstance[reply.instance] += 1;
    expect(byInstance.a + byInstance.b).toBe(requestCount);
    expect(byInstance.a).toBeGreaterThan(0);
    expect(byInstance.b).toBeGreaterThan(0);
  });

  it('delivers a DomainError thrown by a handler as its code; no responder is service_unavailable', async () => {
    await startService([commandController('a')]);
    const client = new CommandClient({ connection: admin, prefix, timeoutMs: 2_000 });
    await expect(client.request(echo, { fail: true })).rejects.toMatchObject({
      code: ErrorCode.notFound,
      message: 'no such agent',
      details: { agent_id: 'a1' },
    });
    await expect(client.request('casino.cmd.nobody_home', {})).rejects.toMatchObject({
      code: ErrorCode.serviceUnavailable,
    });
  });

  it('answers a dependency failure as service_unavailable that may have written, a bug as internal_error; logs once per interval', async () => {
    const subject = 'casino.cmd.dependency_test';
    @Controller()
    class FailingController {
      @MessagePattern(subject)
      answer(@Payload() payload: { bug?: boolean }): never {
        if (payload.bug) throw new TypeError("Cannot read properties of undefined (reading 'x')");
        throw Object.assign(new Error('terminating connection due to administrator command'), {
          code: '57P01',
        });
      }
    }
    const lines: string[] = [];
    const capturing = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    await startService([FailingController], { logger: capturing });
    const client = new CommandClient({ connection: admin, prefix, timeoutMs: 2_000 });
    for (let attempt = 0; attempt < 10; attempt += 1) {
      await expect(client.request(subject, {})).rejects.toMatchObject({
        code: ErrorCode.serviceUnavailable,
        details: { write_may_have_happened: true },
      });
    }
    await expect(client.request(subject, { bug: true })).rejects.toMatchObject({
      code: ErrorCode.internalError,
    });
    const dependencyLines = lines.filter((line) => line.includes('dependency unavailable'));
    expect(dependencyLines).toHaveLength(1);
    expect(dependencyLines[0]).toContain('57P01');
    expect(dependencyLines[0]).not.toContain('"stack"');
  });

  it('a reply that does not come in time is service_unavailable that may have written; a late reply is dropped', async () => {
    const subject = 'casino.cmd.slow_test';
    const slowConnection = await connectTestNats();
    let answered = 0;
    slowConnection.subscribe(prefix.subject(subject), {
      callback: (_error, message) =>
        void sleep(300).then(() => {
          answered += 1;
          message.respond(encodeJson({ ok: true, data: 'late' }));
        }),
    });
    await slowConnection.flush();
    try {
      const client = new CommandClient({ connection: admin, prefix, timeoutMs: 100 });
      await expect(client.request(subject, {})).rejects.toMatchObject({
        code: ErrorCode.serviceUnavailable,
        message: 'casino service is unavailable: it did not answer in time',
        details: { write_may_have_happened: true },
      });
      await waitFor('the late reply', () => answered === 1);
      // The connection's next request gets its own reply, not the late one.
      await expect(client.request(subject, {}, 2_000)).resolves.toBe('late');
    } finally {
      await slowConnection.close();
    }
  });

  it('requests waiting when their connection closes fail as the message bus not reachable', async () => {
    const subject = 'casino.cmd.never_answered';
    const listener = await connectTestNats();
    listener.subscribe(prefix.subject(subject), { callback: () => undefined });
    await listener.flush();
    const closing = await connectTestNats();
    try {
      const client = new CommandClient({ connection: closing, prefix, timeoutMs: 10_000 });
      const waiting = client.request(subject, {});
      await closing.flush();
      await closing.close();
      await expect(waiting).rejects.toMatchObject({
        code: ErrorCode.serviceUnavailable,
        message: 'casino service is unavailable: the message bus is not reachable',
        details: { write_may_have_happened: true },
      });
    } finally {
      await listener.close();
    }
  });

  it('keeps a handler\'s own "nothing was written" on a service_unavailable (a full queue), and says "may have" otherwise', async () => {
    const subject = 'casino.cmd.busy_test';
    @Controller()
    class BusyController {
      @MessagePattern(subject)
      answer(@Payload() payload: { refusedBeforeStart?: boolean }): never {
        throw new DomainError(
          ErrorCode.serviceUnavailable,
          'too many commands are waiting; retry shortly',
          payload.refusedBeforeStart ? { write_may_have_happened: false } : { queue: 'ledger' },
        );
      }
    }
    await startService([BusyController]);
    const client = new CommandClient({ connection: admin, prefix, timeoutMs: 2_000 });
    await expect(client.request(subject, { refusedBeforeStart: true })).rejects.toMatchObject({
      code: ErrorCode.serviceUnavailable,
      details: { write_may_have_happened: false },
    });
    await expect(client.request(subject, {})).rejects.toMatchObject({
      code: ErrorCode.serviceUnavailable,
      details: { queue: 'ledger', write_may_have_happened: true },
    });
  });

  it('says nothing was written when no instance answers', async () => {
    const client = new CommandClient({ connection: admin, prefix, timeoutMs: 2_000 });
    await expect(client.request('casino.cmd.nobody_home', {})).rejects.toMatchObject({
      code: ErrorCode.serviceUnavailable,
      details: { write_may_have_happened: false },
    });
  });
});

describe('events', () => {
  it('retries a failing handler with delays until it succeeds, applying the effect once', async () => {
    const pattern = 'casino.events.retry_test';
    const deliveries: number[] = [];
    const third = gate();
    let effects = 0;
    let infoDuringThirdAttempt: ConsumerInfo | undefined;
    const behaviour: EventBehaviour = async (_event, context) => {
      deliveries.push(context.getDeliveryCount());
      if (deliveries.length < 3) throw new Error(`transient failure ${deliveries.length}`);
      infoDuringThirdAttempt = await consumerInfo('retry', pattern);
      await third.promise;
      effects += 1;
    };
    await startService([eventController(pattern, behaviour)], { consumerGroup: 'retry' });
    const sequence = await publish(pattern, envelope('retry_test'));

    await waitFor('third attempt', () => infoDuringThirdAttempt);
    expect(infoDuringThirdAttempt).toMatchObject({ num_ack_pending: 1, num_redelivered: 1 });
    third.open();
    const info = await waitSettled('retry', pattern, sequence);

    expect(deliveries).toEqual([1, 2, 3]);
    expect(effects).toBe(1);
    expect(info).toMatchObject({ num_ack_pending: 0, num_redelivered: 0, num_pending: 0 });
    expect(info.delivered.consumer_seq).toBe(3);
  });

  it('moves an always-failing event to the dead-letter stream after max_deliver attempts, with headers', async () => {
    const pattern = 'casino.events.poison_test';
    const deliveries: number[] = [];
    const behaviour: EventBehaviour = async (_event, context) => {
      deliveries.push(context.getDeliveryCount());
      throw new Error('ledger says\nno');
    };
    await startService([eventController(pattern, behaviour)], { consumerGroup: 'poison' });
    const event = envelope('poison_test');
    await publish(pattern, event);

    const dead = await waitForDeadLetter(durableName('poison', pattern), pattern);
    expect(dead.json<EventEnvelope>()).toEqual(event);
    const header = (name: string) => dead.header.get(name);
    expect(header(deadLetterHeaders.subject)).toBe(prefix.subject(pattern));
    expect(header(deadLetterHeaders.stream)).toBe(casinoStream);
    expect(header(deadLetterHeaders.streamSequence)).toMatch(/^\d+$/);
    expect(header(deadLetterHeaders.consumer)).toBe(durableName('poison', pattern));
    expect(header(deadLetterHeaders.deliveries)).toBe('3');
    expect(header(deadLetterHeaders.error)).toBe('Error: ledger says no');
    expect(header(deadLetterHeaders.msgId)).toBe(event.id);

    // Longer than ack_wait and every retry delay: a terminated message is never delivered again.
    const sequence = Number(header(deadLetterHeaders.streamSequence));
    await waitSettled('poison', pattern, sequence);
    await sleep(2_500);
    expect(deliveries).toEqual([1, 2, 3]);
    const info = await consumerInfo('poison', pattern);
    expect(info).toMatchObject({ num_ack_pending: 0, num_pending: 0 });
    expect(info.config.max_deliver).toBe(4);
  });

  it('dead-letters a message that is not an event envelope without calling the handler', async () => {
    const pattern = 'casino.events.garbage_test';
    let calls = 0;
    await startService([eventController(pattern, async () => void (calls += 1))], {
      consumerGroup: 'garbage',
    });
    await jetstream(admin).publish(prefix.subject(pattern), new TextEncoder().encode('{not json'));
    const dead = await waitForDeadLetter(durableName('garbage', pattern), pattern);
    expect(dead.header.get(deadLetterHeaders.deliveries)).toBe('1');
    expect(dead.header.get(deadLetterHeaders.error)).toMatch(/^malformed event/);
    expect(calls).toBe(0);
  });

  it('runs the effect once for an event id published twice (past the duplicate window) thanks to the inbox', async () => {
    const pattern = 'casino.events.dedup_test';
    const inbox = new InMemoryInbox();
    const transactions: unknown[] = [];
    let effects = 0;
    const behaviour: EventBehaviour = async (_event, context) => {
      transactions.push(context.getTransaction());
      effects += 1;
    };
    await startService([eventController(pattern, behaviour, { consumer: { maxDeliver: 2 } })], {
      consumerGroup: 'dedup',
      inbox,
    });
    const event = envelope('dedup_test');
    // Different Nats-Msg-Ids: the broker stores both, as it would after its duplicate window.
    await publish(pattern, event, `${event.id}-first`);
    const last = await publish(pattern, event, `${event.id}-again`);

    const info = await waitSettled('dedup', pattern, last);
    expect(info.delivered.consumer_seq).toBe(2);
    expect(info.config.max_deliver).toBe(3); // the per-handler override
    expect(effects).toBe(1);
    expect([...inbox.outcomes].sort()).toEqual(['duplicate', 'processed']);
    expect(transactions).toEqual([{ consumer: durableName('dedup', pattern), eventId: event.id }]);
  });

  it('shares one durable between two replicas: every event is processed exactly once across them', async () => {
    const pattern = 'casino.events.shared_test';
    const seen: Record<string, string[]> = { a: [], b: [] };
    const replica =
      (name: string): EventBehaviour =>
      async (event) => {
        seen[name].push(event.id);
        await sleep(20);
      };
    await startService([eventController(pattern, replica('a'))], { consumerGroup: 'shared' });
    await startService([eventController(pattern, replica('b'))], { consumerGroup: 'shared' });
    const eventCount = 40;
    let last = 0;
    for (let index = 0; index < eventCount; index += 1)
      last = await publish(pattern, envelope('shared_test'));

    await waitSettled('shared', pattern, last);
    const all = [...seen.a, ...seen.b];
    expect(all).toHaveLength(eventCount);
    expect(new Set(all).size).toBe(eventCount);
    expect(seen.a.length).toBeGreaterThan(0);
    expect(seen.b.length).toBeGreaterThan(0);
  });

  it('drains on close: a handler in flight finishes and is acked before close resolves', async () => {
    const pattern = 'casino.events.drain_test';
    const release = gate();
    let started = false;
    let finished = false;
    const behaviour: EventBehaviour = async () => {
      started = true;
      await release.promise;
      finished = true;
    };
    const service = await startService([eventController(pattern, behaviour)], { consumerGroup: 'drain' });
    await publish(pattern, envelope('drain_test'));
    await waitFor('handler started', () => started);

    let closed = false;
    const closing = stopService(service).then(() => (closed = true));
    await sleep(300);
    expect(closed).toBe(false);
    release.open();
    await closing;

    expect(finished).toBe(true);
    const info = await consumerInfo('drain', pattern);
    expect(info).toMatchObject({ num_ack_pending: 0, num_pending: 0, num_redelivered: 0 });
    expect(info.ack_floor.stream_seq).toBe(info.delivered.stream_seq);
  });
});

/**
 * The loop with one held subscription (maxAckPending <= maxInFlight: the gateway's webhook and
 * receipt consumers). The same guarantees as the pull-per-batch loop above: every event once,
 * in order when one is in flight, retried after a failure, drained on close.
 */
describe('events through one held subscription', () => {
  const held = (maxInFlight: number): EventPatternExtras => ({
    consumer: { maxInFlight, maxAckPending: maxInFlight },
  });

  it('keeps the order with one in flight, retries a failure in place, and handles each event once', async () => {
    const pattern = 'casino.events.held_order_test';
    const handled: string[] = [];
    const attempts = new Map<string, number>();
    const behaviour: EventBehaviour = async (event) => {
      const attempt = (attempts.get(event.id) ?? 0) + 1;
      attempts.set(event.id, attempt);
      // The fifth event fails once: with one unacknowledged event allowed, nothing overtakes it.
      if (event.data.index === 5 && attempt === 1) throw new Error('transient failure');
      handled.push(event.id);
    };
    expect(isHeld(held(1))).toBe(true);
    await startService([eventController(pattern, behaviour, held(1))], { consumerGroup: 'held-order' });
    const published: string[] = [];
    let last = 0;
    for (let index = 0; index < 30; index += 1) {
      const event = { ...envelope('held_order_test'), data: { index } };
      published.push(event.id);
      last = await publish(pattern, event);
    }

    const info = await waitSettled('held-order', pattern, last);
    expect(handled).toEqual(published);
    expect(attempts.get(published[5]!)).toBe(2);
    expect(info.config.max_ack_pending).toBe(1);
    expect(info).toMatchObject({ num_ack_pending: 0, num_pending: 0 });
  });

  it('shares one durable between two replicas, each event handled once, and drains on close', async () => {
    const pattern = 'casino.events.held_shared_test';
    const seen: string[] = [];
    const release = gate();
    let blocked = false;
    const behaviour: EventBehaviour = async (event) => {
      if (event.data.index === 0) {
        blocked = true;
        await release.promise;
      }
      seen.push(event.id);
      await sleep(5);
    };
    const first = await startService([eventController(pattern, behaviour, held(4))], {
      consumerGroup: 'held-shared',
    });
    await startService([eventController(pattern, behaviour, held(4))], { consumerGroup: 'held-shared' });
    let last = 0;
    for (let index = 0; index < 40; index += 1)
      last = await publish(pattern, { ...envelope('held_shared_test'), data: { index } });
    await waitFor('first event held by its handler', () => blocked);

    // Closing a replica while a handler runs waits for it and acks it.
    let closed = false;
    const closing = stopService(first).then(() => (closed = true));
    await sleep(200);
    release.open();
    await closing;
    expect(closed).toBe(true);

    await waitSettled('held-shared', pattern, last);
    expect(seen).toHaveLength(40);
    expect(new Set(seen).size).toBe(40);
  });
});

function isHeld(extras: EventPatternExtras): boolean {
  const settings = extras.consumer ?? {};
  return holdsOneSubscription({ maxAckPending: settings.maxAckPending!, maxInFlight: settings.maxInFlight! });
}
