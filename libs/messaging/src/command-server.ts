import { DomainError, ErrorCode, SubjectPrefix, type CommandReply } from '@pf/contracts';
import { Server, type CustomTransportStrategy } from '@nestjs/microservices';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { lastValueFrom, isObservable } from 'rxjs';
import type { Logger } from 'pino';
import { decodeJson, encodeJson } from './codec.js';

export interface CommandServerOptions {
  connection: NatsConnection;
  prefix: SubjectPrefix;
  logger: Logger;
  /** Most requests one replica works on at once; the rest wait in NATS (bounded queue). */
  maxInFlight?: number;
}

/**
 * NestJS transport for commands: every `@MessagePattern(subject)` becomes a NATS subscription
 * in a queue group named after the subject, so N replicas share the load and each request is
 * answered once. Replies are `{ok, data}` or `{ok: false, error: {code, message}}`.
 */
export class NatsCommandServer extends Server implements CustomTransportStrategy {
  private readonly subscriptions: Subscription[] = [];
  private inFlight = 0;

  constructor(private readonly options: CommandServerOptions) {
    super();
  }

  listen(callback: (...optionalParams: unknown[]) => void): void {
    try {
      for (const [pattern, handler] of this.messageHandlers) {
        if (handler.isEventHandler) continue;
        const subject = this.options.prefix.subject(pattern);
        const subscription = this.options.connection.subscribe(subject, {
          queue: subject,
          callback: (error, message) => {
            if (error) {
              this.options.logger.error({ err: error.message, subject }, 'command subscription error');
              return;
            }
            void this.handle(pattern, message);
          },
        });
        this.subscriptions.push(subscription);
      }
      callback();
    } catch (error) {
      callback(error);
    }
  }

  private async handle(pattern: string, message: Msg): Promise<void> {
    const maxInFlight = this.options.maxInFlight ?? 256;
    if (this.inFlight >= maxInFlight) {
      this.reply(message, failure(ErrorCode.serviceUnavailable, 'service is overloaded, retry later'));
      return;
    }
    this.inFlight += 1;
    try {
      const handler = this.messageHandlers.get(pattern)!;
      const payload = decodeJson(message.data);
      const result = await handler(payload, { subject: message.subject, headers: message.headers });
      const data = isObservable(result) ? await lastValueFrom(result) : await result;
      this.reply(message, { ok: true, data });
    } catch (error) {
      this.reply(message, this.toFailure(pattern, error));
    } finally {
      this.inFlight -= 1;
    }
  }

  private toFailure(pattern: string, error: unknown): CommandReply<never> {
    if (error instanceof DomainError) return failure(error.code, error.message, error.details);
    if (error instanceof SyntaxError) return failure(ErrorCode.invalidRequest, 'command payload is not valid JSON');
    this.options.logger.error({ err: error, pattern }, 'command handler failed');
    return failure(ErrorCode.internalError, 'the service failed to process the command');
  }

  private reply(message: Msg, reply: CommandReply<unknown>): void {
    if (!message.reply) return;
    message.respond(encodeJson(reply));
  }

  /** Stops taking new commands; the connection itself is drained by the service's shutdown. */
  async close(): Promise<void> {
    await Promise.all(this.subscriptions.map((subscription) => subscription.drain()));
    this.subscriptions.length = 0;
  }

  on(): never {
    throw new Error('NatsCommandServer does not support event listeners');
  }

  unwrap<T>(): T {
    return this.options.connection as T;
  }
}

function failure(code: string, message: string, details?: Record<string, unknown>): CommandReply<never> {
  return { ok: false, error: details ? { code, message, details } : { code, message } };
}
