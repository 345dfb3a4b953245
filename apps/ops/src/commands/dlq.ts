import { headers as createHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import { deadLetterHeaders, deadLetterStream, type SubjectPrefix } from '@pf/contracts';
import { createOrderedReader } from '@pf/messaging';
import { booleanFlag, ExitCode, parseArgs, parsePosition, stringFlag, UsageError } from '@pf/ops-kit';
import type { OpsConfig } from '../config.js';
import { withNats } from '../nats.js';
import { note, say } from '../output.js';
import { streamInfoOrNull } from '../streams-info.js';

const DEFAULT_LIST_LIMIT = 100;
const MAX_LIMIT = 10_000;
const PUBLISH_TIMEOUT_MS = 5_000;
/** Marks a republished event, for whoever reads the stream later. */
const REDRIVEN_FROM_HEADER = 'Pf-Redriven-From';
const CONSUMER_PATTERN = /^[A-Za-z0-9_-]{1,200}$/;

export const dlqUsage = `ops dlq list [--consumer NAME] [--limit N] [--json]
ops dlq show <sequence> [--json]
ops dlq redrive <sequence>... | --all [--consumer NAME] [--limit N]
  Dead letters are events a consumer gave up on after its last attempt. redrive republishes the
  original event (same envelope, same event id) to its original subject and then deletes the
  dead letter: the consumer that failed processes it again (its inbox has no record of it, the
  failed attempt rolled back), every other consumer of the subject recognises the event id in
  its inbox and skips it. Fix the cause first, or it comes back to the dead letters.`;

interface DeadLetterView {
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

export async function dlqCommand(argv: readonly string[], config: OpsConfig): Promise<number> {
  const [action, ...rest] = argv;
  switch (action) {
    case 'list':
      return listDeadLetters(rest, config);
    case 'show':
      return showDeadLetter(rest, config);
    case 'redrive':
      return redriveDeadLetters(rest, config);
    default:
      throw new UsageError(`usage: ops dlq list|show|redrive … (got ${JSON.stringify(action ?? '')})`);
  }
}

async function listDeadLetters(argv: readonly string[], config: OpsConfig): Promise<number> {
  const args = parseArgs(argv, { consumer: 'string', limit: 'string', json: 'boolean' });
  if (args.positionals.length > 0)
    throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const consumer = consumerFlag(stringFlag(args, 'consumer'));
  const limit = limitFlag(stringFlag(args, 'limit'), DEFAULT_LIST_LIMIT);
  return withNats(config, async (connection) => {
    const letters = await readDeadLetters(connection, config.prefix, consumer, limit);
    for (const letter of letters)
      say(booleanFlag(args, 'json') ? JSON.stringify(letter) : formatLetter(letter));
    if (!booleanFlag(args, 'json'))
      note(
        letters.length === 0
          ? 'no dead letters'
          : `${letters.length} dead letter(s)${letters.length === limit ? ` (first ${limit}; --limit for more)` : ''}`,
      );
    return ExitCode.ok;
  });
}

async function showDeadLetter(argv: readonly string[], config: OpsConfig): Promise<number> {
  const args = parseArgs(argv, { json: 'boolean' });
  if (args.positionals.length !== 1) throw new UsageError('usage: ops dlq show <sequence>');
  const sequence = parsePosition(args.positionals[0]!, 'sequence');
  return withNats(config, async (connection) => {
    const manager = await jetstreamManager(connection);
    const stored = await getDeadLetter(manager, config.prefix, sequence);
    const letter = viewOf(config.prefix, stored);
    const payload = new TextDecoder().decode(stored.data);
    if (booleanFlag(args, 'json')) {
      say(JSON.stringify({ ...letter, payload: parseJsonOrText(payload) }));
    } else {
      say(formatLetter(letter));
      say(JSON.stringify(parseJsonOrText(payload), null, 2));
    }
    return ExitCode.ok;
  });
}

async function redriveDeadLetters(argv: readonly string[], config: OpsConfig): Promise<number> {
  const args = parseArgs(argv, { all: 'boolean', consumer: 'string', limit: 'string' });
  const all = booleanFlag(args, 'all');
  if (all === args.positionals.length > 0)
    throw new UsageError('usage: ops dlq redrive <sequence>... | --all [--consumer NAME]');
  if (!all && stringFlag(args, 'consumer')) throw new UsageError('--consumer only filters --all');
  const sequences = args.positionals.map((text) => parsePosition(text, 'sequence'));
  const consumer = consumerFlag(stringFlag(args, 'consumer'));
  const limit = limitFlag(stringFlag(args, 'limit'), MAX_LIMIT);
  return withNats(config, async (connection) => {
    const manager = await jetstreamManager(connection);
    const targets = all
      ? (await readDeadLetters(connection, config.prefix, consumer, limit)).map((letter) => letter.sequence)
      : sequences;
    for (const sequence of targets) {
      const stored = await getDeadLetter(manager, config.prefix, sequence);
      const outcome = await redrive(connection, manager, config.prefix, stored);
      say(
        `redriven dead letter #${sequence} (${outcome.consumer}) to ${outcome.subject} as ${outcome.stream} #${outcome.sequence}${outcome.duplicate ? ' (already republished before; only the dead letter was left)' : ''}`,
      );
    }
    if (targets.length === 0) note('no dead letters to redrive');
    return ExitCode.ok;
  });
}

/**
 * Republishes one dead letter and deletes it. The publish carries `Nats-Msg-Id` =
 * `redrive:<dead-letter stream>:<sequence>` (not the event id: within the duplicate window the
 * broker would drop a copy of the original publish), so a redrive repeated after a crash
 * between publish and delete is dropped by the broker; beyond the window, consumers' inboxes
 * still see the same event id. `expect.streamName` refuses a subject that left its stream.
 */
async function redrive(
  connection: NatsConnection,
  manager: JetStreamManager,
  prefix: SubjectPrefix,
  stored: StoredMsg,
) {
  const letter = viewOf(prefix, stored);
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

async function readDeadLetters(
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
      viewOf(prefix, {
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

async function getDeadLetter(
  manager: JetStreamManager,
  prefix: SubjectPrefix,
  sequence: number,
): Promise<StoredMsg> {
  const stream = prefix.streamName(deadLetterStream.name);
  const stored = await manager.streams.getMessage(stream, { seq: sequence }).catch(() => null);
  if (!stored) throw new UsageError(`no dead letter #${sequence} in ${stream}`);
  return stored;
}

function viewOf(
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

function formatLetter(letter: DeadLetterView): string {
  return `#${letter.sequence} ${letter.failedAt} consumer=${letter.consumer} subject=${letter.subject} event=${letter.eventId || '?'} from=${letter.originalStream}#${letter.originalSequence} deliveries=${letter.deliveries}: ${letter.error}`;
}

function consumerFlag(value: string | undefined): string | undefined {
  if (value !== undefined && !CONSUMER_PATTERN.test(value))
    throw new UsageError(`--consumer must be a durable name, got ${JSON.stringify(value)}`);
  return value;
}

function limitFlag(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const limit = parsePosition(value, '--limit');
  if (limit < 1 || limit > MAX_LIMIT) throw new UsageError(`--limit must be from 1 to ${MAX_LIMIT}`);
  return limit;
}

function parseJsonOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
