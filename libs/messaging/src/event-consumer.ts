import type { EventEnvelope, SubjectPrefix } from '@pf/contracts';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  ReplayPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { isObservable, lastValueFrom } from 'rxjs';
import type { Logger } from 'pino';
import { decodeJson } from './codec.js';
import { describeError, publishDeadLetter } from './dead-letter.js';
import { NatsEventContext } from './event-context.js';
import type { ProcessedEventStore } from './inbox.js';

/** Where a durable that does not exist yet starts; an existing durable keeps its position. */
export type DeliverFrom = 'all' | 'new' | { sequence: number } | { time: Date };

export interface EventConsumerSettings {
  /** Time the broker waits for an ack before redelivering; extended with `working()` while a handler runs. */
  ackWaitMs: number;
  /** Handler attempts before the event goes to the dead-letter stream. */
  maxDeliver: number;
  /** Events one replica works on at once per durable; also the fetch batch size. */
  maxInFlight: number;
  /** Unacked events the broker hands out per durable across all replicas. */
  maxAckPending: number;
  /** How long one pull waits for events (the server's minimum is 1 s). */
  fetchExpiresMs: number;
  /** Retry delay after the first failure; doubles per delivery up to `retryDelayMaxMs`. */
  retryDelayInitialMs: number;
  retryDelayMaxMs: number;
  /** After this long a running handler stops extending its ack deadline and the event is redelivered. */
  handlerTimeoutMs: number;
  /** Longest `close()` waits for in-flight handlers. */
  drainTimeoutMs: number;
  /** Publish timeout towards the dead-letter stream. */
  publishTimeoutMs: number;
  deliverFrom: DeliverFrom;
}

export const defaultEventConsumerSettings: EventConsumerSettings = {
  ackWaitMs: 30_000,
  maxDeliver: 5,
  maxInFlight: 8,
  maxAckPending: 1_000,
  fetchExpiresMs: 5_000,
  retryDelayInitialMs: 1_000,
  retryDelayMaxMs: 60_000,
  handlerTimeoutMs: 5 * 60_000,
  drainTimeoutMs: 10_000,
  publishTimeoutMs: 5_000,
  deliverFrom: 'all',
};

/**
 * Events one open pull asks for in the held-subscription loop: the broker delivers them only as
 * acks make room (`maxAckPending`), so this sets how often the pull is topped up, not how many
 * the client holds. Measured with the escrow lifecycle load (docs/BENCHMARKS.md).
 */
const HELD_PULL_BATCH = 64;

/** Pause before pulling again after the pull itself failed (broker restart, consumer gone). */
const PULL_RETRY_DELAY_MS = 1_000;

export type EventHandler = (envelope: EventEnvelope, context: NatsEventContext) => Promise<unknown>;

export interface DurableEventConsumerOptions {
  js: JetStreamClient;
  manager: JetStreamManager;
  prefix: SubjectPrefix;
  logger: Logger;
  inbox?: ProcessedEventStore;
  /** Prefixed stream name. */
  stream: string;
  durable: string;
  /** Unprefixed subject pattern, as in `@EventPattern`. */
  pattern: string;
  handler: EventHandler;
  settings: EventConsumerSettings;
}

/**
 * One durable pull consumer and its fetch loop. Replicas of a service share the durable, so the
 * broker hands each event to one of them (work-queue style). Outcomes per delivery:
 * handler ok → ack; handler failed → nak with a growing delay; failed on the last allowed
 * attempt (or malformed) → copy to the dead-letter stream, then term.
 */
export class DurableEventConsumer {
  private consumer: Consumer | undefined;
  private batch: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private readonly inFlight = new Set<Promise<void>>();
  private slotWaiters: Array<() => void> = [];

  constructor(private readonly options: DurableEventConsumerOptions) {}

  get durable(): string {
    return this.options.durable;
  }

  async start(): Promise<void> {
    const { manager, stream, durable, js } = this.options;
    await ensureConsumer(manager, stream, consumerConfig(this.options));
    this.consumer = await js.consumers.get(stream, durable);
    this.loop = this.run();
  }

  /** Stops pulling, then waits (bounded) for the handlers already running to finish and ack. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.batch?.stop();
    this.wakeSlotWaiters();
    const { drainTimeoutMs } = this.options.settings;
    const drained = await settleWithin(Promise.all([this.loop, ...this.inFlight]), drainTimeoutMs);
    if (!drained) {
      this.options.logger.warn(
        { consumer: this.durable, inFlight: this.inFlight.size },
        'event handlers still running at shutdown',
      );
    }
  }

  private async run(): Promise<void> {
    if (holdsOneSubscription(this.options.settings)) return this.runHeld();
    while (!this.stopping) {
      const free = this.options.settings.maxInFlight - this.inFlight.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
        continue;
      }
      try {
        await this.pull(free);
      } catch (error) {
        if (this.stopping) break;
        this.options.logger.warn(
          { err: describeError(error), consumer: this.durable },
          'event pull failed, retrying',
        );
        await sleep(PULL_RETRY_DELAY_MS);
      }
    }
  }

  /**
   * The loop when the broker never hands out more events than this replica works on at once
   * (`maxAckPending <= maxInFlight`): one subscription stays open and is topped up (nats.js
   * `consume`), instead of a new inbox subscription per pull (SUB, pull, UNSUB: three protocol
   * messages per batch on top of the acks). The open pull asks for up to HELD_PULL_BATCH events
   * and is topped up as they arrive (a quarter at a time), but the broker never has more than
   * `maxAckPending` of them unacknowledged, so the client holds at most that many: none waits
   * unseen while its ack deadline runs. A slot is waited for before the next event is taken, as
   * in the fetch loop.
   */
  private async runHeld(): Promise<void> {
    const { maxInFlight, fetchExpiresMs } = this.options.settings;
    while (!this.stopping) {
      try {
        const messages = await this.consumer!.consume({
          max_messages: HELD_PULL_BATCH,
          expires: fetchExpiresMs,
        });
        this.batch = messages;
        if (this.stopping) messages.stop();
        try {
          for await (const message of messages) {
            if (this.stopping) {
              message.nak();
              continue;
            }
            this.track(message);
            while (!this.stopping && this.inFlight.size >= maxInFlight)
              await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
          }
        } finally {
          this.batch = undefined;
        }
      } catch (error) {
        if (this.stopping) break;
        this.options.logger.warn(
          { err: describeError(error), consumer: this.durable },
          'event subscription failed, retrying',
        );
        await sleep(PULL_RETRY_DELAY_MS);
      }
    }
  }

  /** One pull of at most `count` events; each starts its handler as soon as it arrives. */
  private async pull(count: number): Promise<void> {
    const batch = await this.consumer!.fetch({
      max_messages: count,
      expires: this.options.settings.fetchExpiresMs,
    });
    this.batch = batch;
    if (this.stopping) batch.stop();
    try {
      for await (const message of batch) {
        // Pulled but not started before shutdown: hand it back at once rather than after ack_wait.
        if (this.stopping) message.nak();
        else this.track(message);
      }
    } finally {
      this.batch = undefined;
    }
  }

  private track(message: JsMsg): void {
    const work = this.process(message).catch((error: unknown) => {
      // Only the ack/nak itself can fail here (connection closed): the broker redelivers after ack_wait.
      this.options.logger.warn(
        { err: describeError(error), consumer: this.durable },
        'could not settle an event delivery',
      );
    });
    this.inFlight.add(work);
    void work.finally(() => {
      this.inFlight.delete(work);
      this.wakeSlotWaiters();
    });
  }

  private wakeSlotWaiters(): void {
    const waiters = this.slotWaiters;
    this.slotWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Every path ends in ack, nak or dead-letter + term. */
  private async process(message: JsMsg): Promise<void> {
    const { maxDeliver } = this.options.settings;
    const deliveries = message.info.deliveryCount;
    if (deliveries > maxDeliver) {
      // Only reachable when the last attempt crashed or timed out: the broker allows one extra delivery for this.
      await this.deadLetter(
        message,
        `no outcome after ${maxDeliver} attempts (the last one did not finish in time)`,
      );
      return;
    }
    const envelope = parseEnvelope(message.data);
    if (typeof envelope === 'string') {
      await this.deadLetter(message, envelope);
      return;
    }
    const stopKeepAlive = this.keepAlive(message);
    try {
      await this.runHandler(envelope, message);
      message.ack();
    } catch (error) {
      await this.handleFailure(message, error);
    } finally {
      stopKeepAlive();
    }
  }

  private async runHandler(envelope: EventEnvelope, message: JsMsg): Promise<void> {
    const { inbox, durable, prefix, handler } = this.options;
    const context = new NatsEventContext([message, prefix.unprefix(message.subject), durable]);
    const invoke = async (transaction?: unknown): Promise<void> => {
      if (transaction !== undefined) context.setTransaction(transaction);
      const result = await handler(envelope, context);
      // Nest returns failures of event handlers as an erroring Observable.
      if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
    };
    if (!inbox) {
      await invoke();
      return;
    }
    const outcome = await inbox.runOnce(durable, envelope.id, invoke);
    if (outcome === 'duplicate') {
      this.options.logger.debug({ consumer: durable, eventId: envelope.id }, 'duplicate event skipped');
    }
  }

  private async handleFailure(message: JsMsg, error: unknown): Promise<void> {
    const deliveries = message.info.deliveryCount;
    const reason = describeError(error);
    if (deliveries >= this.options.settings.maxDeliver) {
      await this.deadLetter(message, reason);
      return;
    }
    const delayMs = retryDelayMs(deliveries, this.options.settings);
    this.options.logger.warn(
      { err: reason, consumer: this.durable, subject: message.subject, deliveries, retryInMs: delayMs },
      'event handler failed, will retry',
    );
    message.nak(delayMs);
  }

  private async deadLetter(message: JsMsg, reason: string): Promise<void> {
    const { js, prefix, durable, logger, settings } = this.options;
    const subject = prefix.unprefix(message.subject);
    try {
      await publishDeadLetter(
        js,
        prefix,
        { message, consumer: durable, subject, reason },
        settings.publishTimeoutMs,
      );
    } catch (error) {
      // Not terminated: the broker redelivers it (one extra delivery is reserved for this case).
      logger.error({ err: describeError(error), consumer: durable, subject }, 'dead-letter publish failed');
      message.nak(settings.retryDelayMaxMs);
      return;
    }
    logger.error(
      {
        consumer: durable,
        subject,
        sequence: message.info.streamSequence,
        deliveries: message.info.deliveryCount,
        reason,
      },
      'event moved to the dead-letter stream',
    );
    message.term();
  }

  /** Tells the broker a slow handler is still working so it does not redeliver meanwhile. */
  private keepAlive(message: JsMsg): () => void {
    const { ackWaitMs, handlerTimeoutMs } = this.options.settings;
    const startedAtMs = Date.now();
    const timer = setInterval(
      () => {
        if (Date.now() - startedAtMs < handlerTimeoutMs) {
          message.working();
          return;
        }
        clearInterval(timer);
        this.options.logger.error(
          { consumer: this.durable, subject: message.subject },
          'event handler exceeded its time limit',
        );
      },
      Math.max(ackWaitMs / 2, 100),
    );
    timer.unref();
    return () => clearInterval(timer);
  }
}

/** Delay before the next attempt after `deliveries` failed ones: exponential, capped. */
export function retryDelayMs(
  deliveries: number,
  settings: Pick<EventConsumerSettings, 'retryDelayInitialMs' | 'retryDelayMaxMs'>,
): number {
  const exponent = Math.min(Math.max(deliveries - 1, 0), 30);
  return Math.min(settings.retryDelayMaxMs, settings.retryDelayInitialMs * 2 ** exponent);
}

/** The envelope, or the reason it is unusable (which no retry can fix). */
function parseEnvelope(data: Uint8Array): EventEnvelope | string {
  let envelope: Partial<EventEnvelope> | null;
  try {
    envelope = decodeJson<Partial<EventEnvelope> | null>(data);
  } catch (error) {
    return `malformed event: ${describeError(error)}`;
  }
  if (
    typeof envelope !== 'object' ||
    envelope === null ||
    typeof envelope.id !== 'string' ||
    typeof envelope.type !== 'string'
  ) {
    return 'malformed event: not an event envelope with an id and a type';
  }
  return envelope as EventEnvelope;
}

/**
 * Whether the consumer keeps one subscription open (see `runHeld`): only when the broker's
 * limit of unacknowledged events keeps the client's buffer within what it works on at once.
 */
export function holdsOneSubscription(
  settings: Pick<EventConsumerSettings, 'maxAckPending' | 'maxInFlight'>,
): boolean {
  return settings.maxAckPending <= settings.maxInFlight;
}

export function consumerConfig(
  options: Pick<DurableEventConsumerOptions, 'durable' | 'pattern' | 'prefix' | 'settings'>,
): ConsumerConfig {
  const { settings } = options;
  return {
    durable_name: options.durable,
    filter_subject: options.prefix.subject(options.pattern),
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(settings.ackWaitMs),
    // One delivery more than handler attempts: if the last attempt dies mid-way, the extra
    // delivery only moves the event to the dead-letter stream instead of dropping it silently.
    max_deliver: settings.maxDeliver + 1,
    max_ack_pending: settings.maxAckPending,
    replay_policy: ReplayPolicy.Instant,
    ...deliverPolicy(settings.deliverFrom),
  } as ConsumerConfig;
}

function deliverPolicy(
  from: DeliverFrom,
): Pick<ConsumerConfig, 'deliver_policy' | 'opt_start_seq' | 'opt_start_time'> {
  if (from === 'all') return { deliver_policy: DeliverPolicy.All };
  if (from === 'new') return { deliver_policy: DeliverPolicy.New };
  if ('sequence' in from)
    return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from.sequence };
  return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: from.time.toISOString() };
}

const UPDATABLE_FIELDS = ['ack_wait', 'max_deliver', 'max_ack_pending', 'filter_subject'] as const;

/**
 * Creates the durable, or brings the settings that may change in place up to date. Where it
 * starts is fixed at creation: an existing durable keeps its position.
 */
export async function ensureConsumer(
  manager: JetStreamManager,
  stream: string,
  wanted: ConsumerConfig,
): Promise<void> {
  const durable = wanted.durable_name!;
  let current = await consumerConfigOrNull(manager, stream, durable);
  if (current === null) {
    try {
      await manager.consumers.add(stream, wanted);
      return;
    } catch (error) {
      // Another replica created it first.
      current = await consumerConfigOrNull(manager, stream, durable);
      if (current === null) throw error;
    }
  }
  if (current.ack_policy !== AckPolicy.Explicit) {
    throw new Error(
      `consumer ${stream}/${durable} has ack policy ${current.ack_policy}; delete it to recreate`,
    );
  }
  const changed = UPDATABLE_FIELDS.filter((field) => current[field] !== wanted[field]);
  if (changed.length === 0) return;
  const update = Object.fromEntries(changed.map((field) => [field, wanted[field]]));
  await manager.consumers.update(stream, durable, update);
}

async function consumerConfigOrNull(
  manager: JetStreamManager,
  stream: string,
  durable: string,
): Promise<ConsumerConfig | null> {
  try {
    return (await manager.consumers.info(stream, durable)).config;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound) return null;
    throw error;
  }
}

/**
 * The durable name for a service's consumer of a pattern: replicas of one service share it,
 * two services never do. `faucet` + `casino.events.>` → `faucet__casino-events-all`.
 */
export function durableName(consumerGroup: string, pattern: string): string {
  const tokens = pattern.split('.').map((token) => (token === '>' ? 'all' : token === '*' ? 'any' : token));
  const name = `${consumerGroup}__${tokens.join('-')}`;
  if (!/^[A-Za-z0-9_-]+$/.test(name))
    throw new Error(`cannot derive a durable name from ${consumerGroup} and ${pattern}`);
  return name;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function settleWithin(work: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
