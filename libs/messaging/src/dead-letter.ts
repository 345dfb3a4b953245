import { deadLetterHeaders, deadLetterStream, type SubjectPrefix } from '@pf/contracts';
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { headers as createHeaders, type MsgHdrs } from '@nats-io/transport-node';

/** Longest error text kept in a header: enough to diagnose, small enough for every message. */
const ERROR_HEADER_MAX_CHARS = 512;

export interface DeadLetter {
  message: JsMsg;
  /** The durable consumer giving up. */
  consumer: string;
  /** The original subject without the deployment prefix. */
  subject: string;
  reason: string;
}

/** `dlq.<consumer>.<original subject>`, so ops can filter the dead letters of one consumer. */
export function deadLetterSubject(prefix: SubjectPrefix, consumer: string, subject: string): string {
  return prefix.subject(`${deadLetterStream.subjects.slice(0, -1)}${consumer}.${subject}`);
}

/**
 * Copies a message the consumer gave up on to the dead-letter stream, with headers naming its
 * origin and the last error. The publish is deduplicated on consumer + stream sequence, so a
 * crash between this publish and the term of the original cannot dead-letter it twice.
 */
export async function publishDeadLetter(
  js: JetStreamClient,
  prefix: SubjectPrefix,
  letter: DeadLetter,
  timeoutMs: number,
): Promise<void> {
  const { message, consumer } = letter;
  await js.publish(deadLetterSubject(prefix, consumer, letter.subject), message.data, {
    headers: deadLetterHeadersFor(letter),
    msgID: `${consumer}:${message.info.streamSequence}`,
    timeout: timeoutMs,
  });
}

function deadLetterHeadersFor({ message, consumer, reason }: DeadLetter): MsgHdrs {
  const result = createHeaders();
  // Keep the publisher's own headers (trace ids…) but not the broker's: a copied Nats-Msg-Id would
  // make the dead-letter stream drop the same event dead-lettered by a second consumer.
  for (const [key, values] of message.headers ?? []) {
    if (key.toLowerCase().startsWith('nats-')) continue;
    for (const value of values) result.append(key, value);
  }
  result.set(deadLetterHeaders.subject, message.subject);
  result.set(deadLetterHeaders.stream, message.info.stream);
  result.set(deadLetterHeaders.streamSequence, String(message.info.streamSequence));
  result.set(deadLetterHeaders.consumer, consumer);
  result.set(deadLetterHeaders.deliveries, String(message.info.deliveryCount));
  result.set(deadLetterHeaders.error, oneLine(reason));
  result.set(deadLetterHeaders.msgId, message.headers?.get('Nats-Msg-Id') ?? '');
  result.set(deadLetterHeaders.failedAt, new Date().toISOString());
  return result;
}

/** Header values cannot hold line breaks; long errors are cut. */
function oneLine(text: string): string {
  const flat = text.replace(/[\r\n]+/g, ' ').trim();
  return flat.length > ERROR_HEADER_MAX_CHARS ? `${flat.slice(0, ERROR_HEADER_MAX_CHARS - 1)}…` : flat;
}

/** A short description of whatever a handler threw. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  if (typeof error === 'object' && error !== null && 'message' in error) return String(error.message);
  return String(error);
}
