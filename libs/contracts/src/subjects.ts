import { casinoCommands } from './casino.js';
import { escrowCommands } from './escrow.js';
import { faucetCommands } from './faucet.js';
import { mandateCommands } from './mandates.js';
import { marketCommands } from './market.js';

/**
 * Every NATS subject and JetStream stream name, defined once. Handlers and clients use the
 * unprefixed names below; the messaging layer adds the deployment prefix (NATS_PREFIX) so
 * that parallel test runs never see each other's traffic or collide on stream subjects.
 */
export const SERVICE_NAMES = ['casino', 'faucet', 'escrow', 'market'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export const commandSubjects = {
  casino: { ...casinoCommands, ...mandateCommands },
  faucet: {
    ping: 'faucet.cmd.ping',
    ...faucetCommands,
  },
  escrow: escrowCommands,
  market: marketCommands,
} as const satisfies Record<ServiceName, Record<string, `${ServiceName}.cmd.${string}`>>;

/** The JetStream stream each service publishes its events to (`<service>.events.>`). */
export const eventStreams = {
  casino: { name: 'CASINO_EVENTS', subjects: 'casino.events.>' },
  faucet: { name: 'FAUCET_EVENTS', subjects: 'faucet.events.>' },
  escrow: { name: 'ESCROW_EVENTS', subjects: 'escrow.events.>' },
  market: { name: 'MARKET_EVENTS', subjects: 'market.events.>' },
} as const satisfies Record<ServiceName, { name: string; subjects: string }>;

/**
 * Where consumers put events they gave up on after their last delivery attempt, so ops can
 * inspect and re-drive them. Subjects are `dlq.<consumer durable>.<original subject>`.
 */
export const deadLetterStream = { name: 'DEAD_LETTERS', subjects: 'dlq.>' } as const;

/** Headers on every dead-lettered message: where it came from and why it was given up. */
export const deadLetterHeaders = {
  /** Original subject, as it was on the wire (with the deployment prefix). */
  subject: 'Pf-Dlq-Subject',
  stream: 'Pf-Dlq-Stream',
  streamSequence: 'Pf-Dlq-Sequence',
  consumer: 'Pf-Dlq-Consumer',
  deliveries: 'Pf-Dlq-Deliveries',
  /** The last handler error, one line, truncated. */
  error: 'Pf-Dlq-Error',
  /** The original Nats-Msg-Id (the event id for events from the outbox). */
  msgId: 'Pf-Dlq-Msg-Id',
  failedAt: 'Pf-Dlq-Failed-At',
} as const;

/**
 * Stream limits for event and dead-letter streams. The duplicate window only covers publisher
 * retries (minutes); consumers deduplicate on the event id for anything older. Events are kept
 * a year so new read models and consumers can replay history.
 */
export const eventStreamDefaults = {
  duplicateWindowMs: 2 * 60_000,
  maxAgeMs: 365 * 24 * 60 * 60_000,
} as const;

export function eventSubject(service: ServiceName, type: string): string {
  return `${service}.events.${type}`;
}

const PREFIX_PATTERN = /^[A-Za-z0-9_-]*$/;

/** A deployment prefix: empty in production, one per test run. */
export class SubjectPrefix {
  constructor(readonly value: string) {
    if (!PREFIX_PATTERN.test(value)) {
      throw new Error(`NATS prefix must match ${PREFIX_PATTERN}: got ${JSON.stringify(value)}`);
    }
  }

  subject(subject: string): string {
    return this.value === '' ? subject : `${this.value}.${subject}`;
  }

  /** Strips the prefix from a subject received from NATS, giving the contract's name. */
  unprefix(subject: string): string {
    const head = `${this.value}.`;
    return this.value !== '' && subject.startsWith(head) ? subject.slice(head.length) : subject;
  }

  streamName(name: string): string {
    return this.value === '' ? name : `${this.value}_${name}`;
  }
}
