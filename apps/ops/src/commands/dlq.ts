import { jetstreamManager } from '@nats-io/jetstream';
import {
  booleanFlag,
  deadLetterView,
  ExitCode,
  getDeadLetter,
  parseArgs,
  parsePosition,
  readDeadLetters,
  redriveDeadLetter,
  stringFlag,
  UsageError,
  type DeadLetterView,
} from '@pf/ops-kit';
import type { OpsConfig } from '../config.js';
import { withNats } from '../nats.js';
import { note, say } from '../output.js';

const DEFAULT_LIST_LIMIT = 100;
const MAX_LIMIT = 10_000;
const CONSUMER_PATTERN = /^[A-Za-z0-9_-]{1,200}$/;

export const dlqUsage = `ops dlq list [--consumer NAME] [--limit N] [--json]
ops dlq show <sequence> [--json]
ops dlq redrive <sequence>... | --all [--consumer NAME] [--limit N]
  Dead letters are events a consumer gave up on after its last attempt. redrive republishes the
  original event (same envelope, same event id) to its original subject and then deletes the
  dead letter: the consumer that failed processes it again (its inbox has no record of it, the
  failed attempt rolled back), every other consumer of the subject recognises the event id in
  its inbox and skips it. Fix the cause first, or it comes back to the dead letters.`;

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
    const letter = deadLetterView(config.prefix, stored);
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
      const outcome = await redriveDeadLetter(connection, manager, config.prefix, stored);
      say(
        `redriven dead letter #${sequence} (${outcome.consumer}) to ${outcome.subject} as ${outcome.stream} #${outcome.sequence}${outcome.duplicate ? ' (already republished before; only the dead letter was left)' : ''}`,
      );
    }
    if (targets.length === 0) note('no dead letters to redrive');
    return ExitCode.ok;
  });
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
