import {
  JetStreamApiCodes,
  JetStreamApiError,
  type ConsumerInfo,
  type JetStreamManager,
  type StreamInfo,
} from '@nats-io/jetstream';
import { deadLetterStream, type SubjectPrefix } from '@pf/contracts';
import { contractEventStreams } from '@pf/messaging';

/** Consumers listed per stream; more are counted, not shown. */
const MAX_CONSUMERS_LISTED = 100;

export async function streamInfoOrNull(manager: JetStreamManager, name: string): Promise<StreamInfo | null> {
  try {
    return await manager.streams.info(name);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return null;
    throw error;
  }
}

export async function streamExists(manager: JetStreamManager, name: string): Promise<boolean> {
  return (await streamInfoOrNull(manager, name)) !== null;
}

export interface ConsumerState {
  name: string;
  /**
   * False for an ephemeral consumer (no durable name): an `ops tail` or a gateway's SSE
   * connection reading the stream, gone when it disconnects; its lag is no service's backlog.
   */
  durable: boolean;
  /** Messages matching the filter not yet delivered. */
  pendingMessages: number;
  /** Delivered, not yet acknowledged. */
  ackPendingMessages: number;
  redeliveredMessages: number;
  /** Given up on and copied to the dead-letter stream. */
  deadLetters: number;
  /** Not yet processed: pending + ack pending. */
  lagMessages: number;
  deliveredSequence: number;
  ackFloorSequence: number;
}

export interface StreamState {
  /** Contract name (CASINO_EVENTS); `name` is the prefixed one. */
  contractName: string;
  name: string;
  exists: boolean;
  messages: number;
  bytes: number;
  firstSequence: number;
  lastSequence: number;
  lastTime: string | null;
  consumers: ConsumerState[];
  consumersNotListed: number;
}

/** Every contract stream and the dead-letter stream, with their consumers and dead-letter counts. */
export async function collectStreamStates(
  manager: JetStreamManager,
  prefix: SubjectPrefix,
): Promise<StreamState[]> {
  const deadLetters = await deadLettersByConsumer(manager, prefix);
  const states: StreamState[] = [];
  for (const definition of [...contractEventStreams(), deadLetterStream]) {
    const name = prefix.streamName(definition.name);
    const info = await streamInfoOrNull(manager, name);
    if (!info) {
      states.push({
        contractName: definition.name,
        name,
        exists: false,
        messages: 0,
        bytes: 0,
        firstSequence: 0,
        lastSequence: 0,
        lastTime: null,
        consumers: [],
        consumersNotListed: 0,
      });
      continue;
    }
    const consumers: ConsumerState[] = [];
    let notListed = 0;
    for await (const consumer of manager.consumers.list(name)) {
      if (consumers.length >= MAX_CONSUMERS_LISTED) notListed += 1;
      else consumers.push(consumerState(consumer, deadLetters.get(consumer.name) ?? 0));
    }
    // Durable (the services' own) first: their lag is what an operator looks for.
    consumers.sort((a, b) => Number(b.durable) - Number(a.durable) || a.name.localeCompare(b.name));
    states.push({
      contractName: definition.name,
      name,
      exists: true,
      messages: info.state.messages,
      bytes: info.state.bytes,
      firstSequence: info.state.first_seq,
      lastSequence: info.state.last_seq,
      lastTime: info.state.messages > 0 ? info.state.last_ts : null,
      consumers,
      consumersNotListed: notListed,
    });
  }
  return states;
}

function consumerState(info: ConsumerInfo, deadLetters: number): ConsumerState {
  return {
    name: info.name,
    durable: Boolean(info.config.durable_name),
    pendingMessages: info.num_pending,
    ackPendingMessages: info.num_ack_pending,
    redeliveredMessages: info.num_redelivered,
    deadLetters,
    lagMessages: info.num_pending + info.num_ack_pending,
    deliveredSequence: info.delivered.stream_seq,
    ackFloorSequence: info.ack_floor.stream_seq,
  };
}

/** Dead letters per consumer durable, from the subject counts `dlq.<consumer>.<subject>`. */
async function deadLettersByConsumer(
  manager: JetStreamManager,
  prefix: SubjectPrefix,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const info = await streamInfoOrNull(manager, prefix.streamName(deadLetterStream.name));
  if (!info || info.state.messages === 0) return counts;
  const detailed = await manager.streams.info(info.config.name, {
    subjects_filter: prefix.subject(deadLetterStream.subjects),
  });
  for (const [subject, count] of Object.entries(detailed.state.subjects ?? {})) {
    const consumer = prefix.unprefix(subject).split('.')[1];
    if (consumer) counts.set(consumer, (counts.get(consumer) ?? 0) + count);
  }
  return counts;
}
