import type { MessageHandler } from '@nestjs/microservices';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { NatsCommandServer, type CommandServerOptions } from './command-server.js';
import {
  defaultEventConsumerSettings,
  DurableEventConsumer,
  durableName,
  type EventConsumerSettings,
  type EventHandler,
} from './event-consumer.js';
import type { ProcessedEventStore } from './inbox.js';
import {
  contractEventStreams,
  ensureStreams,
  streamForPattern,
  type StreamDefinition,
  type StreamSettings,
} from './streams.js';

/** Durable names are built from it, and they allow no dots or wildcards. */
const CONSUMER_GROUP_PATTERN = /^[A-Za-z0-9_-]+$/;

/**
 * Per-handler overrides: `@EventPattern(subject, { consumer: { maxInFlight: 1 } })`, e.g. for a
 * handler that needs events one at a time in stream order.
 */
export interface EventPatternExtras {
  consumer?: Partial<EventConsumerSettings>;
}

export interface NatsTransportOptions extends CommandServerOptions {
  /**
   * Names this service's durable consumers (usually the service name): replicas with the same
   * group share each durable, different groups each get every event.
   */
  consumerGroup: string;
  /** When set, each event handler runs once per (durable, event id) inside an inbox transaction. */
  inbox?: ProcessedEventStore;
  events?: Partial<EventConsumerSettings>;
  /** Streams ensured at start (default: every contract event stream, plus the dead-letter stream). */
  streams?: readonly StreamDefinition[];
  streamSettings?: Partial<StreamSettings>;
}

/**
 * The one NestJS transport a service connects: `@MessagePattern` commands over request/reply in
 * queue groups (see NatsCommandServer), and `@EventPattern` handlers fed by durable JetStream
 * pull consumers with explicit acks, delayed retries and a dead-letter stream. At start it
 * ensures the streams; at close it stops pulling and lets running handlers finish and ack.
 */
export class NatsTransport extends NatsCommandServer {
  private readonly consumers: DurableEventConsumer[] = [];

  constructor(private readonly transportOptions: NatsTransportOptions) {
    super(transportOptions);
    if (!CONSUMER_GROUP_PATTERN.test(transportOptions.consumerGroup)) {
      throw new Error(
        `consumerGroup must match ${CONSUMER_GROUP_PATTERN}: got ${JSON.stringify(transportOptions.consumerGroup)}`,
      );
    }
  }

  override listen(callback: (...optionalParams: unknown[]) => void): void {
    this.start().then(
      () => callback(),
      (error: unknown) => callback(error),
    );
  }

  private async start(): Promise<void> {
    const { connection, prefix, streams, streamSettings } = this.transportOptions;
    await ensureStreamsPatiently(() =>
      ensureStreams(connection, prefix, { streams, settings: streamSettings }),
    );
    this.subscribeCommands();
    // Ready only once the server has the subscriptions: a request sent right after start must find them.
    await connection.flush();
    const handlers = this.eventHandlers();
    if (handlers.length === 0) return;
    const js = jetstream(connection);
    const manager = await jetstreamManager(connection);
    for (const [pattern, handler] of handlers) {
      const consumer = this.createConsumer(pattern, handler, js, manager);
      await consumer.start();
      this.consumers.push(consumer);
    }
  }

  private eventHandlers(): Array<[string, MessageHandler]> {
    return [...this.messageHandlers].filter(([, handler]) => handler.isEventHandler);
  }

  private createConsumer(
    pattern: string,
    handler: MessageHandler,
    js: JetStreamClient,
    manager: JetStreamManager,
  ): DurableEventConsumer {
    const { prefix, logger, inbox, consumerGroup } = this.transportOptions;
    const stream = streamForPattern(pattern, this.transportOptions.streams ?? contractEventStreams());
    return new DurableEventConsumer({
      js,
      manager,
      prefix,
      logger,
      inbox,
      stream: prefix.streamName(stream.name),
      durable: durableName(consumerGroup, pattern),
      pattern,
      handler: handler as unknown as EventHandler,
      settings: {
        ...defaultEventConsumerSettings,
        ...this.transportOptions.events,
        ...(handler.extras as EventPatternExtras | undefined)?.consumer,
      },
    });
  }

  /** Stops commands and event pulls together, waits for running handlers, then flushes their acks. */
  override async close(): Promise<void> {
    await Promise.all([super.close(), ...this.consumers.map((consumer) => consumer.stop())]);
    this.consumers.length = 0;
    const { connection } = this.transportOptions;
    if (!connection.isClosed()) await connection.flush().catch(() => undefined);
  }
}

/** How long a starting service keeps asking JetStream to set up its streams. */
const ENSURE_STREAMS_DEADLINE_MS = 60_000;
const ENSURE_STREAMS_PAUSE_MS_MAX = 2_000;

/**
 * JetStream's API can time out or answer 503 while a cluster elects its meta leader, or when
 * every replica of every app creates R3 streams at once on a busy machine (seen under `npm run
 * chaos -- --cluster`: apps died at start on "TimeoutError: timeout"). Those are transient: ask
 * again, with a growing pause, for a bounded time. Any other error (a bad config) fails at once.
 */
async function ensureStreamsPatiently<T>(attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + ENSURE_STREAMS_DEADLINE_MS;
  for (let round = 1; ; round += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (!isTransientJetStreamError(error) || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(250 * round, ENSURE_STREAMS_PAUSE_MS_MAX)));
    }
  }
}

function isTransientJetStreamError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const text = `${error.name} ${error.message}`.toLowerCase();
  return /timeout|no responders|503|temporarily unavailable|insufficient resources|no suitable peers/.test(
    text,
  );
}
