import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { SubjectPrefix, type EventEnvelope } from '@pf/contracts';
// eslint-disable-next-line @nx/enforce-module-boundaries -- only tests use the shared harness (a throwaway broker)
import { connectTestNats, NatsServers, waitFor } from '@pf/testing';
import { encodeJson } from './codec.js';
import {
  defaultEventConsumerSettings,
  DurableEventConsumer,
  holdsOneSubscription,
  type EventConsumerSettings,
} from './event-consumer.js';

/**
 * Both fetch loops of DurableEventConsumer (a pull per batch; one held subscription) across a
 * broker crash: the broker is a throwaway `nats-server -js` on free ports, killed with SIGKILL and
 * started again on the same store. Every event published before and after is handled.
 */
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const prefix = new SubjectPrefix(`t${randomUUID().slice(0, 8)}`);
const stream = prefix.streamName('RESTART_EVENTS');
const subjects = 'restart.events.>';

let servers: NatsServers;
let connection: NatsConnection;

beforeAll(async () => {
  servers = await NatsServers.start(1);
  connection = await connectTestNats(servers.url, { maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  const manager = await jetstreamManager(connection);
  await manager.streams.add({ name: stream, subjects: [prefix.subject(subjects)] });
}, 60_000);

afterAll(async () => {
  await connection?.close();
  await servers?.stop();
});

const modes: Array<[string, Partial<EventConsumerSettings>]> = [
  ['a pull per batch', { maxInFlight: 4, maxAckPending: 100 }],
  ['one held subscription', { maxInFlight: 4, maxAckPending: 4 }],
];

describe.each(modes)('a durable consumer (%s) across a broker crash', (mode, overrides) => {
  it('handles every event published before and after the crash, none lost', async () => {
    const settings: EventConsumerSettings = {
      ...defaultEventConsumerSettings,
      ackWaitMs: 2_000,
      fetchExpiresMs: 1_000,
      retryDelayInitialMs: 50,
      retryDelayMaxMs: 200,
      ...overrides,
    };
    expect(holdsOneSubscription(settings)).toBe(mode === 'one held subscription');
    const durable = `restart-${mode.replace(/\W+/g, '-')}`;
    const handled: string[] = [];
    const consumer = new DurableEventConsumer({
      js: jetstream(connection),
      manager: await jetstreamManager(connection),
      prefix,
      logger,
      stream,
      durable,
      pattern: `restart.events.${durable}`,
      handler: async (envelope) => {
        handled.push(envelope.id);
      },
      settings,
    });
    await consumer.start();
    // Each event is re-sent with its own id until the broker takes it: the dedup window keeps it once.
    const publish = async (count: number): Promise<string[]> => {
      const ids: string[] = [];
      for (let index = 0; index < count; index += 1) {
        const event = envelope(durable);
        ids.push(event.id);
        await waitFor(
          'the broker to take an event',
          () =>
            jetstream(connection)
              .publish(prefix.subject(`restart.events.${durable}`), encodeJson(event), { msgID: event.id })
              .catch(() => undefined),
          { timeoutMs: 30_000, intervalMs: 200 },
        );
      }
      return ids;
    };
    try {
      const before = await publish(10);
      await waitFor('events before the crash', () => (handled.length >= 10 ? true : undefined));

      await servers.kill(0);
      await servers.restart(0);
      await servers.waitForJetStream();
      const after = await publish(10);
      await waitFor(
        'events after the crash',
        () => (after.every((id) => handled.includes(id)) ? true : undefined),
        {
          timeoutMs: 30_000,
          intervalMs: 100,
        },
      );

      // At least once: acks the broker had not yet written when it was killed are redelivered
      // (handlers dedup through the inbox); none is lost.
      expect(new Set(handled)).toEqual(new Set([...before, ...after]));
    } finally {
      await consumer.stop();
    }
  }, 90_000);
});

function envelope(type: string): EventEnvelope {
  return {
    id: randomUUID(),
    type,
    stream: 'restart',
    version: 1,
    position: 1,
    occurred_at: new Date().toISOString(),
    correlation_id: null,
    causation_id: null,
    schema: 1,
    data: {},
  };
}
