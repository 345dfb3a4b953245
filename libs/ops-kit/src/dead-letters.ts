import { headers as createHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import { deadLetterHeaders, deadLetterStream, type SubjectPrefix } from '@pf/contracts';
import { createOrderedReader } from '@pf/messaging';
import { UsageError } from './args.js';
import { streamInfoOrNull } from './streams-info.js';

/**
 * Dead letters: events a consumer gave up on after its last attempt, copied to the dead-letter
 * stream with their origin in headers. Read and re-driven by `ops dlq` and by the gateway's
 * `/admin/dead-letters` routes (the dashboard's operator view), with this one implementation.
 */

const PUBLISH_TIMEOUT_MS = 5_000;
/** Marks a republished event, for whoever reads the stream later. */
const REDRIVEN_FROM_HEADER = 'Pf-Redriven-From';

export interface DeadLetterView {
  sequence: number;
  consumer: string;
  subject: string;
  originalStream: string;
  originalSequence: string;
  deliveries: string;
  eventId: string;
  failedAt: string;
  error: string;
}

export interface RedriveOutcome {
  consumer: string;
  subject: string;
  stream: string;
  sequence: number;
  /** The broker had this republish already (a redrive repeated after a crash). */
  duplicate: boolean;
}

/** The first `limit` dead letters (of one consumer durable, or all), oldest first. */
export async function readDeadLetters(
  connection: NatsConnection,
  prefix: SubjectPrefix,
  consumer: string | undefined,
  limit: number,
): Promise<DeadLetterView[]> {
  const manager = await jetstreamManager(connection);
  if (!(await streamInfoOrNull(manager, prefix.streamName(deadLetterStream.name)))) return [];
  const filterSubject = consumer ? `dlq.${consumer}.>` : undefined;
  const letters: DeadLetterView[] = [];
  for await (const message of createOrderedReader(connection, prefix, deadLetterStream.name, {
    filterSubject,
  })) {
    letters.push(
      deadLetterView(prefix, {
        seq: message.sequence,
        subject: prefix.subject(message.subject),
        header: message.headers,
        time: message.time,
      }),
    );
    if (letters.length >= limit) break;
  }
  return letters;
}

/** One dead letter by its sequence; UsageError when there is none. */
export async function getDeadLetter(
  manager: JetStreamManager,
  prefix: SubjectPrefix,
  sequence: number,
): Promise<StoredMsg> {
  const stream = prefix.streamName(deadLetterStream.name);
  const stored = await manager.streams.getMessage(stream, { seq: sequence }).catch(() => null);
  if (!stored) throw new UsageError(`no dead letter #${sequence} in ${stream}`);
  return stored;
}

/**
 * Republishes one dead letter and deletes it. The publish carries `Nats-Msg-Id` =
 * `redrive:<dead-letter stream>:<sequence>` (not the event id: within the duplicate window the
 * broker would drop a copy of the original publish), so a redrive repeated after a crash
 * between publish and delete is dropped by the broker; beyond the window, consumers' inboxes
 * still see the same event id. `expect.streamName` refuses a subject that left its stream.
 */
export async function redriveDeadLetter(
  connection: NatsConnection,
  manager: JetStreamManager,
  prefix: SubjectPrefix,
  stored: StoredMsg,
): Promise<RedriveOutcome> {
  const letter = deadLetterView(prefix, stored);
  const wireSubject = stored.header?.get(deadLetterHeaders.subject) ?? '';
  if (!wireSubject || (prefix.value !== '' && !wireSubject.startsWith(`${prefix.value}.`))) {
    throw new UsageError(
      `dead letter #${letter.sequence} has no original subject under this NATS_PREFIX (${JSON.stringify(wireSubject)})`,
    );
  }
  const dlqStream = prefix.streamName(deadLetterStream.name);
  const ack = await jetstream(connection).publish(wireSubject, stored.data, {
    msgID: `redrive:${dlqStream}:${letter.sequence}`,
    headers: republishHeaders(stored.header, `${dlqStream}#${letter.sequence}`),
    expect: letter.originalStream ? { streamName: letter.originalStream } : undefined,
    timeout: PUBLISH_TIMEOUT_MS,
  });
  await manager.streams.deleteMessage(dlqStream, letter.sequence, false);
  return {
    consumer: letter.consumer,
    subject: letter.subject,
    stream: ack.stream,
    sequence: ack.seq,
    duplicate: ack.duplicate,
  };
}

/** The publisher's own headers, without the broker's and the dead-letter bookkeeping. */
function republishHeaders(original: MsgHdrs | undefined, origin: string): MsgHdrs {
  const result = createHeaders();
  for (const [key, values] of original ?? []) {
    const lower = key.toLowerCase();
    if (lower.startsWith('nats-') || lower.startsWith('pf-dlq-')) continue;
    for (const value of values) result.append(key, value);
  }
  result.set(REDRIVEN_FROM_HEADER, origin);
  return result;
}

export function deadLetterView(
  prefix: SubjectPrefix,
  stored: Pick<StoredMsg, 'seq' | 'subject' | 'time'> & { header: MsgHdrs | undefined },
): DeadLetterView {
  const header = (key: string) => stored.header?.get(key) ?? '';
  return {
    sequence: stored.seq,
    consumer: header(deadLetterHeaders.consumer) || prefix.unprefix(stored.subject).split('.')[1] || '?',
    subject: prefix.unprefix(header(deadLetterHeaders.subject)),
    originalStream: header(deadLetterHeaders.stream),
    originalSequence: header(deadLetterHeaders.streamSequence),
    deliveries: header(deadLetterHeaders.deliveries),
    eventId: header(deadLetterHeaders.msgId),
    failedAt: header(deadLetterHeaders.failedAt) || stored.time.toISOString(),
    error: header(deadLetterHeaders.error),
  };
}
