import {
  describeDependencyFailure,
  DomainError,
  ErrorCode,
  isDependencyFailure,
  SubjectPrefix,
  ThrottledFailureLog,
  WRITE_MAY_HAVE_HAPPENED,
  type CommandReply,
} from '@pf/contracts';
import { Server, type CustomTransportStrategy } from '@nestjs/microservices';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { lastValueFrom, isObservable } from 'rxjs';
import type { Logger } from 'pino';
import { decodeJson, encodeJson } from './codec.js';
import { requestIdOf, runWithRequestId } from './request-context.js';

export interface CommandServerOptions {
  connection: NatsConnection;
  prefix: SubjectPrefix;
  logger: Logger;
  /** Most requests one replica works on at once; beyond it callers get service_unavailable at once. */
  maxInFlight?: number;
  /** Longest `close()` waits for running commands to answer. */
  drainTimeoutMs?: number;
  /** While a dependency is down, its failures are logged at most once per this interval. */
  failureLogIntervalMs?: number;
}

/**
 * NestJS transport for commands: every `@MessagePattern(subject)` becomes a NATS subscription
 * in a queue group named after the subject, so N replicas share the load and each request is
 * answered once. Replies are `{ok, data}` or `{ok: false, error: {code, message}}`.
 */
export class NatsCommandServer extends Server implements CustomTransportStrategy {
  private readonly subscriptions: Subscription[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly failureLog: ThrottledFailureLog;

  constructor(protected readonly options: CommandServerOptions) {
    super();
    this.failureLog = new ThrottledFailureLog(options.logger, options.failureLogIntervalMs ?? 5_000);
  }

  listen(callback: (...optionalParams: unknown[]) => void): void {
    try {
      this.subscribeCommands();
    } catch (error) {
      callback(error);
      return;
    }
    // Ready only once the server has the subscriptions: a request sent right after start must find them.
    this.options.connection.flush().then(
      () => callback(),
      (error: unknown) => callback(error),
    );
  }

  /** One queue-group subscription per `@MessagePattern`. */
  protected subscribeCommands(): void {
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
          const requestId = requestIdOf(message.headers);
          const work = () => this.handle(pattern, message);
          this.track(requestId ? runWithRequestId(requestId, work) : work());
        },
      });
      this.subscriptions.push(subscription);
    }
  }

  private track(work: Promise<void>): void {
    this.running.add(work);
    void work.finally(() => this.running.delete(work));
  }

  private async handle(pattern: string, message: Msg): Promise<void> {
    const maxInFlight = this.options.maxInFlight ?? 256;
    // Runs before `track` adds this request, so `running` holds only the others.
    if (this.running.size >= maxInFlight) {
      // Refused before any work: nothing was written.
      this.reply(
        message,
        failure(ErrorCode.serviceUnavailable, 'service is overloaded, retry later', {
          [WRITE_MAY_HAVE_HAPPENED]: false,
        }),
      );
      return;
    }
    const startedAtMs = performance.now();
    let reply: CommandReply<unknown>;
    try {
      const handler = this.messageHandlers.get(pattern)!;
      const payload = decodeJson(message.data);
      const result = await handler(payload, { subject: message.subject, headers: message.headers });
      const data = isObservable(result) ? await lastValueFrom(result, { defaultValue: null }) : await result;
      reply = { ok: true, data };
    } catch (error) {
      reply = this.toFailure(pattern, error);
    }
    this.reply(message, reply);
    // The command side of the access log: with the request id (logger mixin) it ties a gateway
    // request to its work here. At debug: a ledger answers thousands of these a second.
    this.options.logger.debug(
      {
        command: pattern,
        ok: reply.ok,
        ...(reply.ok ? {} : { code: reply.error.code }),
        latency_ms: Math.round((performance.now() - startedAtMs) * 100) / 100,
      },
      'command',
    );
  }

  private toFailure(pattern: string, error: unknown): CommandReply<never> {
    if (error instanceof DomainError && error.code === ErrorCode.serviceUnavailable)
      return this.unavailable(pattern, error, error.message, error.details);
    if (error instanceof DomainError) return failure(error.code, error.message, error.details);
    if (error instanceof SyntaxError)
      return failure(ErrorCode.invalidRequest, 'command payload is not valid JSON');
    if (isDependencyFailure(error))
      return this.unavailable(pattern, error, 'a dependency of the service is unavailable, retry later');
    this.options.logger.error({ err: error, pattern }, 'command handler failed');
    return failure(ErrorCode.internalError, 'the service failed to process the command');
  }

  /**
   * The handler ran and something it depends on (Postgres, NATS, another service) failed: it
   * may have committed part of its work (a saga's first step), so the caller is told the write
   * may have happened and must retry with the same ids. Logged once per interval, not per request.
   */
  private unavailable(
    pattern: string,
    error: unknown,
    message: string,
    details?: Record<string, unknown>,
  ): CommandReply<never> {
    this.failureLog.warn(`${pattern}:unavailable`, 'command failed: dependency unavailable', {
      pattern,
      err: describeDependencyFailure(error),
    });
    // A handler that knows nothing was written (a full queue refused the command before it
    // started) says so in its details; otherwise the write may have happened.
    return failure(ErrorCode.serviceUnavailable, message, { [WRITE_MAY_HAVE_HAPPENED]: true, ...details });
  }

  private reply(message: Msg, reply: CommandReply<unknown>): void {
    if (!message.reply || this.options.connection.isClosed()) return;
    message.respond(encodeJson(reply));
  }

  /**
   * Stops taking new commands and waits (at most `drainTimeoutMs`) for the ones running to
   * answer; the connection itself is drained by the service's shutdown.
   */
  async close(): Promise<void> {
    await Promise.all(this.subscriptions.map((subscription) => subscription.drain()));
    this.subscriptions.length = 0;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.drainTimeoutMs ?? 10_000);
    });
    await Promise.race([Promise.allSettled([...this.running]), timeout]);
    clearTimeout(timer);
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
