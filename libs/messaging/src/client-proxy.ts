import { DomainError, type CommandReply, type SubjectPrefix } from '@pf/contracts';
import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { jetstream, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { decodeJson, encodeJson } from './codec.js';
import { commandUnavailableError } from './command-client.js';

export interface NatsClientProxyOptions {
  connection: NatsConnection;
  prefix: SubjectPrefix;
  /** How long `send` waits for a reply before failing with service_unavailable. */
  requestTimeoutMs: number;
  /** How long `emit` waits for the stream's publish ack. */
  publishTimeoutMs: number;
}

/**
 * A NestJS ClientProxy over the same envelopes as the transport, for code that prefers
 * `client.send(pattern, data)` / `client.emit(pattern, event)` Observables. `send` is a command
 * (request/reply; failures arrive as DomainError); `emit` publishes to JetStream, deduplicated
 * by the broker on the envelope id. CommandClient stays the primary typed API.
 */
export class NatsClientProxy extends ClientProxy {
  private readonly js: JetStreamClient;

  constructor(private readonly options: NatsClientProxyOptions) {
    super();
    this.js = jetstream(options.connection);
  }

  /** The connection is owned (and drained) by the service. */
  async connect(): Promise<NatsConnection> {
    return this.options.connection;
  }

  async close(): Promise<void> {
    // Nothing to release: the connection belongs to the service.
  }

  unwrap<T>(): T {
    return this.options.connection as T;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    let cancelled = false;
    void this.request(this.normalizePattern(packet.pattern), packet.data).then((result) => {
      if (!cancelled) callback({ ...result, isDisposed: true });
    });
    return () => {
      cancelled = true;
    };
  }

  /** Never rejects: the outcome is a response or an error for the observer. */
  private async request(pattern: string, data: unknown): Promise<{ response?: unknown; err?: DomainError }> {
    let reply: CommandReply<unknown>;
    try {
      const message = await this.options.connection.request(
        this.options.prefix.subject(pattern),
        encodeJson(data ?? {}),
        {
          timeout: this.options.requestTimeoutMs,
        },
      );
      reply = decodeJson<CommandReply<unknown>>(message.data);
    } catch (error) {
      return { err: commandUnavailableError(pattern, error) };
    }
    if (reply.ok) return { response: reply.data };
    return { err: new DomainError(reply.error.code, reply.error.message, reply.error.details) };
  }

  protected async dispatchEvent<T = PubAck>(packet: ReadPacket): Promise<T> {
    const subject = this.options.prefix.subject(this.normalizePattern(packet.pattern));
    const id = envelopeId(packet.data);
    const ack = await this.js.publish(subject, encodeJson(packet.data), {
      timeout: this.options.publishTimeoutMs,
      ...(id === undefined ? {} : { msgID: id }),
    });
    return ack as T;
  }
}

function envelopeId(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null || !('id' in data)) return undefined;
  return typeof data.id === 'string' && data.id !== '' ? data.id : undefined;
}
