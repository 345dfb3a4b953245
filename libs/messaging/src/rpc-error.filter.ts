import { Catch, type ArgumentsHost, type INestApplication, type INestMicroservice } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import type { Observable } from 'rxjs';
import { throwError } from 'rxjs';
import type { NatsTransport } from './transport.js';

/**
 * Nest's default RPC filter replaces every error that is not an RpcException by a generic
 * "Internal server error", so a DomainError thrown in a `@MessagePattern` handler would reach the
 * caller as internal_error, and an event handler's failure would lose its reason. This filter
 * hands RPC errors to the NATS transport unchanged (it maps them to reply envelopes and retry
 * decisions); HTTP errors get Nest's default handling, and an app's own HTTP filters registered
 * later still take precedence.
 */
@Catch()
export class RpcErrorPassthroughFilter extends BaseExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost): Observable<never> | void {
    if (host.getType() === 'rpc') return throwError(() => exception);
    super.catch(exception, host);
  }
}

/**
 * Connects the NATS transport to a hybrid (HTTP + NATS) app. The filter must be global before
 * `connectMicroservice`, which binds the handlers at once.
 */
export function connectNatsTransport(app: INestApplication, transport: NatsTransport): INestMicroservice {
  app.useGlobalFilters(new RpcErrorPassthroughFilter(app.getHttpAdapter()));
  return app.connectMicroservice({ strategy: transport }, { inheritAppConfig: true });
}
