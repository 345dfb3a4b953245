import {
  DomainError,
  ErrorCode,
  SubjectPrefix,
  WRITE_MAY_HAVE_HAPPENED,
  type CommandReply,
} from '@pf/contracts';
import { errors, type NatsConnection } from '@nats-io/transport-node';
import { decodeJson, encodeJson } from './codec.js';
import { requestIdHeaders } from './request-context.js';

export interface CommandClientOptions {
  connection: NatsConnection;
  prefix: SubjectPrefix;
  /** Default time a caller waits for a reply before giving up with service_unavailable. */
  timeoutMs: number;
}

/**
 * Sends commands over NATS request/reply and turns the reply envelope back into a value or a
 * DomainError. No responder, a timeout or a closed connection all become service_unavailable:
 * the caller cannot know whether the command ran, so commands carry caller-chosen ids and are
 * safe to retry.
 */
export class CommandClient {
  constructor(private readonly options: CommandClientOptions) {}

  async request<T>(subject: string, payload: unknown = {}, timeoutMs = this.options.timeoutMs): Promise<T> {
    let reply: CommandReply<T>;
    try {
      const message = await this.options.connection.request(
        this.options.prefix.subject(subject),
        encodeJson(payload),
        // The request id (if any) travels with the command so the handler logs under it too.
        { timeout: timeoutMs, headers: requestIdHeaders() },
      );
      reply = decodeJson<CommandReply<T>>(message.data);
    } catch (error) {
      throw commandUnavailableError(subject, error);
    }
    if (reply.ok) return reply.data;
    throw new DomainError(reply.error.code, reply.error.message, reply.error.details);
  }
}

/**
 * What a caller sees when a command got no reply. With no responder nobody received it, so
 * nothing was written; after a timeout or a lost connection it may have run.
 */
export function commandUnavailableError(subject: string, error: unknown): DomainError {
  const service = subject.split('.')[0];
  const noResponders = error instanceof errors.RequestError && error.isNoResponders();
  const reason = noResponders
    ? 'no instance is running'
    : error instanceof errors.TimeoutError
      ? 'it did not answer in time'
      : 'the message bus is not reachable';
  return new DomainError(ErrorCode.serviceUnavailable, `${service} service is unavailable: ${reason}`, {
    service,
    [WRITE_MAY_HAVE_HAPPENED]: !noResponders,
  });
}
