import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
  type OrderedConsumerOptions,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { deadLetterHeaders, deadLetterStream, type EventEnvelope, type SubjectPrefix } from '@pf/contracts';
import { contractEventStreams, streamForPattern, type StreamDefinition } from '@pf/messaging';
import {
  booleanFlag,
  ExitCode,
  parseArgs,
  parseDurationMs,
  parsePosition,
  stringFlag,
  UsageError,
  streamExists,
} from '@pf/ops-kit';
import type { OpsConfig } from '../config.js';
import { withNats } from '../nats.js';
import { note, say } from '../output.js';

const FLAGS = { 'from-position': 'string', since: 'string', json: 'boolean', count: 'string' } as const;
/** The relay publishes in position order batch by batch; this many messages back covers any reordering. */
const POSITION_SEARCH_SLACK = 1_000;
/** Messages probed past a deleted sequence during the position search. */
const MAX_PROBE_GAP = 16;
const MAX_DATA_CHARS = 300;
const PULL_BATCH = 256;
/** The broker removes the probe consumer by itself after this, should the delete not arrive. */
const PROBE_CONSUMER_INACTIVE_MS = 10_000;

export const tailUsage = `ops tail [subject|service] [--from-position N | --since 10m] [--count N] [--json]
  Follows JetStream events live, one line each (--json: one JSON object each). subject is a
  contract subject (casino.events.funds_transferred, escrow.events.>, dlq.>) or a service name;
  default: every service's events. --from-position N starts at the event with log position N
  (one service's stream), --since 10m at events stored in the last 10 minutes, oldest first
  across services; default: new ones. --count N exits after N events (history included).`;

interface TailPlan {
  streams: StreamDefinition[];
  /** Unprefixed filter; undefined = the whole stream. */
  filter: string | undefined;
  start: { kind: 'new' } | { kind: 'position'; position: number } | { kind: 'since'; at: Date };
  json: boolean;
  count: number | undefined;
}

export async function tailCommand(argv: readonly string[], config: OpsConfig): Promise<number> {
  const plan = tailPlan(argv);
  return withNats(config, async (connection) => {
    const manager = await jetstreamManager(connection);
    const streams: StreamDefinition[] = [];
    for (const stream of plan.streams) {
      if (await streamExists(manager, config.prefix.streamName(stream.name))) streams.push(stream);
      else if (plan.streams.length === 1)
        throw new UsageError(
          `stream ${config.prefix.streamName(stream.name)} does not exist (no service has started with this NATS_PREFIX?)`,
        );
    }
    if (streams.length === 0)
      throw new UsageError('no event stream exists yet (no service has started with this NATS_PREFIX?)');
    await follow(connection, manager, config.prefix, { ...plan, streams });
    return ExitCode.ok;
  });
}

function tailPlan(argv: readonly string[]): TailPlan {
  const args = parseArgs(argv, FLAGS);
  if (args.positionals.length > 1) throw new UsageError(`usage: ${tailUsage.split('\n')[0]}`);
  const subject = expandSubject(args.positionals[0]);
  const known = [...contractEventStreams(), deadLetterStream];
  let streams: StreamDefinition[];
  if (subject === undefined) streams = contractEventStreams();
  else {
    if (!/^[A-Za-z0-9_*>-]+(\.[A-Za-z0-9_*>-]+)*$/.test(subject))
      throw new UsageError(`not a NATS subject: ${JSON.stringify(subject)}`);
    try {
      streams = [streamForPattern(subject, known)];
    } catch {
      throw new UsageError(
        `no stream carries ${subject}: use <service>.events.<type>, <service>.events.>, dlq.> or a service name`,
      );
    }
  }
  const fromPosition = stringFlag(args, 'from-position');
  const since = stringFlag(args, 'since');
  if (fromPosition !== undefined && since !== undefined)
    throw new UsageError('give --from-position or --since, not both');
  if (fromPosition !== undefined && streams.length !== 1)
    throw new UsageError("--from-position is a position in one service's log: name a subject or service");
  const countText = stringFlag(args, 'count');
  const count = countText === undefined ? undefined : parsePosition(countText, '--count');
  if (count === 0) throw new UsageError('--count must be at least 1');
  const start: TailPlan['start'] =
    fromPosition !== undefined
      ? { kind: 'position', position: parsePosition(fromPosition, '--from-position') }
      : since !== undefined
        ? { kind: 'since', at: new Date(Date.now() - parseDurationMs(since, '--since')) }
        : { kind: 'new' };
  return { streams, filter: subject, start, json: booleanFlag(args, 'json'), count };
}

/** `casino` → `casino.events.>`, `dlq` → `dlq.>`; anything else as given. */
function expandSubject(subject: string | undefined): string | undefined {
  if (subject === undefined) return undefined;
  if (contractEventStreams().some((stream) => stream.subjects === `${subject}.events.>`))
    return `${subject}.events.>`;
  if (subject === 'dlq') return deadLetterStream.subjects;
  return subject;
}

/**
 * One ordered (ephemeral) consumer per stream. The history before now (--since, --from-position)
 * is merged across the streams by the time each message was stored, then new messages print as
 * they arrive. Runs until Ctrl-C / SIGTERM or `--count` lines; the broker forgets the consumers
 * by itself afterwards.
 */
async function follow(
  connection: NatsConnection,
  manager: JetStreamManager,
  prefix: SubjectPrefix,
  plan: TailPlan,
): Promise<void> {
  const js = jetstream(connection);
  const subscriptions: ConsumerMessages[] = [];
  const historyCounts: number[] = [];
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const onSignal = () => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const stream of plan.streams) {
      const streamName = prefix.streamName(stream.name);
      const options = await startOptions(manager, streamName, prefix, plan);
      // Counted before the consumer starts: its first that-many messages are the history.
      historyCounts.push(plan.start.kind === 'new' ? 0 : await pendingFrom(manager, streamName, options));
      const consumer = await js.consumers.get(streamName, options);
      subscriptions.push(await consumer.consume({ max_messages: PULL_BATCH }));
    }
    note(
      `following ${plan.streams.map((stream) => prefix.streamName(stream.name)).join(', ')}${plan.filter ? ` (${plan.filter})` : ''} from ${describeStart(plan)}; Ctrl-C to stop`,
    );
    const printer = new LinePrinter(prefix, plan, stop);
    const sources = subscriptions.map((messages, index): Source => ({
      stream: plan.streams[index]!.name,
      messages: messages[Symbol.asyncIterator](),
      historyLeft: historyCounts[index]!,
    }));
    await Promise.race([stopped, replayThenFollow(sources, printer)]);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const messages of subscriptions) messages.stop();
  }
}

interface Source {
  stream: string;
  messages: AsyncIterator<JsMsg>;
  /** Messages of the history (stored before the tail started) not yet taken. */
  historyLeft: number;
  head?: JsMsg;
}

/** Prints lines until --count is reached; after that, nothing more (buffered messages included). */
class LinePrinter {
  private printed = 0;
  private readonly minimumPosition: number;

  constructor(
    private readonly prefix: SubjectPrefix,
    private readonly plan: TailPlan,
    private readonly onDone: () => void,
  ) {
    this.minimumPosition = plan.start.kind === 'position' ? plan.start.position : 0;
  }

  get done(): boolean {
    return this.plan.count !== undefined && this.printed >= this.plan.count;
  }

  print(stream: string, message: JsMsg): void {
    if (this.done) return;
    const line = formatMessage(this.prefix, stream, message, this.plan.json, this.minimumPosition);
    if (line === undefined) return;
    say(line);
    this.printed += 1;
    if (this.done) this.onDone();
  }
}

/** History first, merged by storage time (oldest first, across streams), then live as it comes. */
async function replayThenFollow(sources: Source[], printer: LinePrinter): Promise<void> {
  while (!printer.done) {
    for (const source of sources) {
      if (source.historyLeft === 0 || source.head) continue;
      const next = await source.messages.next();
      if (next.done) source.historyLeft = 0;
      else source.head = next.value;
    }
    const pending = sources.filter((source) => source.historyLeft > 0 && source.head);
    if (pending.length === 0) break;
    const oldest = pending.reduce((best, source) =>
      source.head!.info.timestampNanos < best.head!.info.timestampNanos ? source : best,
    );
    const message = oldest.head!;
    oldest.head = undefined;
    oldest.historyLeft -= 1;
    printer.print(oldest.stream, message);
  }
  await Promise.all(
    sources.map(async (source) => {
      while (!printer.done) {
        const next = await source.messages.next();
        if (next.done) return;
        printer.print(source.stream, next.value);
      }
    }),
  );
}

/**
 * How many messages a consumer with these options would deliver now, from a throwaway pull
 * consumer's `num_pending` (it honours the start and the subject filter), deleted at once.
 */
async function pendingFrom(
  manager: JetStreamManager,
  streamName: string,
  options: Partial<OrderedConsumerOptions>,
): Promise<number> {
  const filter = options.filter_subjects;
  const info = await manager.consumers.add(streamName, {
    ack_policy: AckPolicy.None,
    deliver_policy: options.deliver_policy,
    ...(options.opt_start_seq !== undefined ? { opt_start_seq: options.opt_start_seq } : {}),
    ...(options.opt_start_time !== undefined ? { opt_start_time: options.opt_start_time } : {}),
    // One subject: `filter_subjects` (a list) needs NATS 2.10, which not every broker runs.
    ...(typeof filter === 'string'
      ? { filter_subject: filter }
      : filter !== undefined
        ? { filter_subjects: filter }
        : {}),
    inactive_threshold: nanos(PROBE_CONSUMER_INACTIVE_MS),
    mem_storage: true,
  });
  await manager.consumers.delete(streamName, info.name).catch(() => undefined);
  return info.num_pending;
}

function describeStart(plan: TailPlan): string {
  switch (plan.start.kind) {
    case 'new':
      return 'now';
    case 'position':
      return `log position ${plan.start.position}`;
    case 'since':
      return plan.start.at.toISOString();
  }
}

async function startOptions(
  manager: JetStreamManager,
  streamName: string,
  prefix: SubjectPrefix,
  plan: TailPlan,
): Promise<Partial<OrderedConsumerOptions>> {
  const filter = plan.filter ? { filter_subjects: prefix.subject(plan.filter) } : {};
  switch (plan.start.kind) {
    case 'new':
      return { ...filter, deliver_policy: DeliverPolicy.New };
    case 'since':
      return {
        ...filter,
        deliver_policy: DeliverPolicy.StartTime,
        opt_start_time: plan.start.at.toISOString(),
      };
    case 'position':
      return {
        ...filter,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: await sequenceNear(manager, streamName, plan.start.position),
      };
  }
}

/**
 * The stream sequence to start from for a log position: a binary search over the envelopes'
 * `position` (the relay publishes in log order, batch by batch), stepped back by a margin for
 * events committed out of order; the exact cut is then made on each envelope's position.
 */
async function sequenceNear(
  manager: JetStreamManager,
  streamName: string,
  position: number,
): Promise<number> {
  const { state } = await manager.streams.info(streamName);
  if (state.messages === 0) return Math.max(state.last_seq + 1, 1);
  let low = state.first_seq;
  let high = state.last_seq + 1;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    const found = await positionAtOrAfter(manager, streamName, middle, state.last_seq);
    if (found === undefined || found >= position) high = middle;
    else low = middle + 1;
  }
  return Math.max(state.first_seq, low - POSITION_SEARCH_SLACK);
}

async function positionAtOrAfter(
  manager: JetStreamManager,
  streamName: string,
  sequence: number,
  lastSequence: number,
): Promise<number | undefined> {
  for (let probe = sequence; probe <= Math.min(sequence + MAX_PROBE_GAP, lastSequence); probe += 1) {
    const message = await manager.streams.getMessage(streamName, { seq: probe }).catch(() => null);
    if (!message) continue;
    try {
      const position = (message.json() as Partial<EventEnvelope>).position;
      if (typeof position === 'number') return position;
    } catch {
      // Not an envelope (a stray message): look at the next one.
    }
  }
  return undefined;
}

interface TailedMessage {
  subject: string;
  seq: number;
  time: Date;
  data: Uint8Array;
  headers?: { get(key: string): string } | undefined;
}

/** One line per message; undefined for an event below --from-position. */
export function formatMessage(
  prefix: SubjectPrefix,
  stream: string,
  message: TailedMessage,
  json: boolean,
  minimumPosition: number,
): string | undefined {
  const subject = prefix.unprefix(message.subject);
  const text = new TextDecoder().decode(message.data);
  let envelope: Partial<EventEnvelope> | undefined;
  try {
    envelope = JSON.parse(text) as Partial<EventEnvelope>;
  } catch {
    envelope = undefined;
  }
  const isDeadLetter = stream === deadLetterStream.name;
  if (
    !isDeadLetter &&
    minimumPosition > 0 &&
    typeof envelope?.position === 'number' &&
    envelope.position < minimumPosition
  )
    return undefined;
  const time = message.time.toISOString();
  if (json) {
    const deadLetter = isDeadLetter ? deadLetterInfo(message) : undefined;
    return JSON.stringify({
      stream,
      sequence: message.seq,
      subject,
      time,
      ...(deadLetter ? { deadLetter } : {}),
      ...(envelope ? { envelope } : { payload: text }),
    });
  }
  const head = `${time} ${subject} #${message.seq}`;
  if (!envelope || typeof envelope !== 'object') return `${head} ${truncate(text)}`;
  const origin = isDeadLetter
    ? ` [${Object.entries(deadLetterInfo(message))
        .map(([key, value]) => `${key}=${value}`)
        .join(' ')}]`
    : '';
  return `${head} ${envelope.stream ?? '?'}@${envelope.version ?? '?'} pos=${envelope.position ?? '?'} id=${envelope.id ?? '?'}${origin} ${truncate(JSON.stringify(envelope.data ?? {}))}`;
}

function deadLetterInfo(message: TailedMessage): Record<string, string> {
  const header = (key: string) => message.headers?.get(key) ?? '';
  return {
    consumer: header(deadLetterHeaders.consumer),
    deliveries: header(deadLetterHeaders.deliveries),
    error: header(deadLetterHeaders.error),
  };
}

function truncate(text: string): string {
  return text.length > MAX_DATA_CHARS ? `${text.slice(0, MAX_DATA_CHARS - 1)}…` : text;
}
