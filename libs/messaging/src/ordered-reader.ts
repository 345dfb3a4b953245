import type { SubjectPrefix } from '@pf/contracts';
import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type OrderedConsumerOptions,
} from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { decodeJson } from './codec.js';

export interface StoredStreamMessage {
  /** Subject without the deployment prefix. */
  subject: string;
  sequence: number;
  time: Date;
  headers: MsgHdrs | undefined;
  data: Uint8Array;
  json<T>(): T;
}

export interface OrderedReaderOptions {
  /** First stream sequence to read (default 1). */
  fromSequence?: number;
  /** Read messages stored at or after this time instead. */
  fromTime?: Date;
  /** Unprefixed subject filter, e.g. `escrow.events.funded`. */
  filterSubject?: string;
  /** Messages per pull. */
  batchSize?: number;
  /** How long a pull waits when nothing more arrives: the reader then ends (min 1 s). */
  fetchExpiresMs?: number;
}

/**
 * Reads a stream in order from a sequence or a time up to its current end, through an ephemeral
 * ordered consumer (no durable state on the broker; it expires by itself). For replays, audits and
 * re-driving dead letters: `for await (const message of createOrderedReader(nc, prefix, 'DEAD_LETTERS'))`.
 */
export async function* createOrderedReader(
  connection: NatsConnection,
  prefix: SubjectPrefix,
  stream: string,
  options: OrderedReaderOptions = {},
): AsyncGenerator<StoredStreamMessage> {
  const streamName = prefix.streamName(stream);
  const manager = await jetstreamManager(connection);
  const { state } = await manager.streams.info(streamName);
  const fromSequence = options.fromSequence ?? 1;
  if (state.messages === 0 || (!options.fromTime && fromSequence > state.last_seq)) return;

  const consumer = await jetstream(connection).consumers.get(
    streamName,
    orderedOptions(prefix, options, fromSequence),
  );
  const batchSize = options.batchSize ?? 256;
  const expires = Math.max(options.fetchExpiresMs ?? 1_000, 1_000);
  let batch: ConsumerMessages | undefined;
  try {
    for (;;) {
      batch = await consumer.fetch({ max_messages: batchSize, expires });
      let received = 0;
      for await (const message of batch) {
        received += 1;
        yield {
          subject: prefix.unprefix(message.subject),
          sequence: message.seq,
          time: message.time,
          headers: message.headers,
          data: message.data,
          json: <T>() => decodeJson<T>(message.data),
        };
        if (message.info.pending === 0) return;
      }
      if (received === 0) return;
    }
  } finally {
    batch?.stop();
  }
}

function orderedOptions(
  prefix: SubjectPrefix,
  options: OrderedReaderOptions,
  fromSequence: number,
): Partial<OrderedConsumerOptions> {
  // A string (not an array) becomes `filter_subject`, which servers before 2.10 understand.
  const filter = options.filterSubject ? { filter_subjects: prefix.subject(options.filterSubject) } : {};
  if (options.fromTime) {
    return {
      ...filter,
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: options.fromTime.toISOString(),
    };
  }
  return { ...filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSequence };
}
