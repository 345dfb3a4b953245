import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  defaultEventConsumerSettings,
  DurableEventConsumer,
  type EventConsumerSettings,
  type EventHandler,
} from '@pf/messaging';
import type { ServiceContext } from '@pf/platform';
import type { GatewayConfig } from '../config.js';

/**
 * Durable consumers the gateway runs on other services' streams (receipts, webhook fan-out).
 * Replicas share each durable, so an event is handled by one replica at a time; handlers are
 * idempotent on the event id. A handler that fails (a service or Postgres down) is retried with
 * a growing delay for hours rather than dead-lettered: these events must not be skipped.
 */
export const gatewayConsumerSettings: EventConsumerSettings = {
  ...defaultEventConsumerSettings,
  maxDeliver: 2_000,
  retryDelayInitialMs: 500,
  retryDelayMaxMs: 30_000,
  deliverFrom: 'all',
};

/** Pause between attempts to create a consumer whose stream is not there yet (a fresh deployment). */
const START_RETRY_DELAY_MS = 1_000;

/**
 * Starts the consumer in the background, retrying until it runs: the streams are ensured by the
 * transport after the module's hooks ran, and the HTTP API must not wait for JetStream to start.
 * Returns a stop function.
 */
export function runGatewayConsumer(
  context: ServiceContext<GatewayConfig>,
  options: Parameters<typeof startGatewayConsumer>[1],
): () => Promise<void> {
  let stopped = false;
  let consumer: DurableEventConsumer | undefined;
  const started = (async () => {
    while (!stopped) {
      try {
        consumer = await startGatewayConsumer(context, options);
        if (stopped) await consumer.stop();
        return;
      } catch (error) {
        context.logger.warn({ err: error, consumer: options.durable }, 'consumer not started yet, retrying');
        await new Promise((resolve) => setTimeout(resolve, START_RETRY_DELAY_MS));
      }
    }
  })();
  return async () => {
    stopped = true;
    await started;
    await consumer?.stop();
  };
}

export async function startGatewayConsumer(
  context: ServiceContext<GatewayConfig>,
  options: {
    stream: string;
    subjects: string;
    durable: string;
    handler: EventHandler;
    settings: EventConsumerSettings;
  },
): Promise<DurableEventConsumer> {
  const consumer = new DurableEventConsumer({
    js: jetstream(context.nats),
    manager: await jetstreamManager(context.nats),
    prefix: context.prefix,
    logger: context.logger,
    stream: context.prefix.streamName(options.stream),
    durable: options.durable,
    pattern: options.subjects,
    handler: options.handler,
    settings: options.settings,
  });
  await consumer.start();
  return consumer;
}
