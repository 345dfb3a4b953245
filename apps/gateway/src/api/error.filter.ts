import { ArgumentsHost, Catch, HttpException, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { DomainError, ErrorCode, httpStatusByErrorCode, type ErrorBody } from '@pf/contracts';

/**
 * The one place where failures become HTTP answers: `{error, message}` with the status of the
 * code. Never a stack trace, never HTML; unexpected errors are logged and answered as 500.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const [status, body] = this.toResponse(exception);
    // A refusal that says when to come back (ip_rate_limited) says it the HTTP way too, as rate_limited does.
    if (status === 429 && typeof body.retry_after_seconds === 'number')
      void reply.header('retry-after', String(Math.max(1, Math.ceil(body.retry_after_seconds))));
    void reply.status(status).header('content-type', 'application/json; charset=utf-8').send(body);
  }

  private toResponse(exception: unknown): [number, ErrorBody] {
    if (exception instanceof DomainError) {
      return [
        httpStatusByErrorCode[exception.code] ?? 400,
        { ...exception.details, error: exception.code, message: exception.message },
      ];
    }
    if (exception instanceof HttpException) return this.fromHttpException(exception);
    // Anything can be thrown (`throw 'x'`, `throw null`): only objects may carry a status.
    const fastifyError =
      typeof exception === 'object' && exception !== null
        ? (exception as { statusCode?: unknown; code?: unknown })
        : {};
    if (
      typeof fastifyError.statusCode === 'number' &&
      fastifyError.statusCode >= 400 &&
      fastifyError.statusCode < 500
    ) {
      return this.fromFastifyError(
        fastifyError.statusCode,
        typeof fastifyError.code === 'string' ? fastifyError.code : undefined,
      );
    }
    this.logger.error({ err: exception }, 'unhandled error');
    return [500, { error: ErrorCode.internalError, message: 'internal error' }];
  }

  private fromHttpException(exception: HttpException): [number, ErrorBody] {
    const status = exception.getStatus();
    if (status === 404) return [404, { error: ErrorCode.notFound, message: 'no such route' }];
    if (status === 413)
      return [413, { error: ErrorCode.invalidRequest, message: 'request body is too large' }];
    if (status < 500) return [status, { error: ErrorCode.invalidRequest, message: exception.message }];
    this.logger.error({ err: exception }, 'http exception');
    return [status, { error: ErrorCode.internalError, message: 'internal error' }];
  }

  private fromFastifyError(status: number, code?: string): [number, ErrorBody] {
    if (status === 413)
      return [413, { error: ErrorCode.invalidRequest, message: 'request body is too large' }];
    if (status === 415)
      return [415, { error: ErrorCode.invalidRequest, message: 'content type must be application/json' }];
    if (status === 404) return [404, { error: ErrorCode.notFound, message: 'no such route' }];
    if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY')
      return [status, { error: ErrorCode.invalidRequest, message: 'request body is empty' }];
    // Fastify's own 4xx codes (FST_ERR_CTP_* for bodies, FST_ERR_BAD_URL, …) say what was wrong with the request.
    const message = code?.startsWith('FST_ERR_CTP_') ? 'request body is not valid JSON' : 'malformed request';
    return [status, { error: ErrorCode.invalidRequest, message }];
  }
}
