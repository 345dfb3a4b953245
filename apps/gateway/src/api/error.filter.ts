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
    void reply.status(status).header('content-type', 'application/json; charset=utf-8').send(body);
  }

  private toResponse(exception: unknown): [number, ErrorBody] {
    if (exception instanceof DomainError) {
      return [httpStatusByErrorCode[exception.code] ?? 400, { error: exception.code, message: exception.message, ...exception.details }];
    }
    if (exception instanceof HttpException) return this.fromHttpException(exception);
    const fastifyError = exception as { statusCode?: number; code?: string; message?: string };
    if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode < 500) {
      return this.fromFastifyError(fastifyError.statusCode, fastifyError.code);
    }
    this.logger.error({ err: exception }, 'unhandled error');
    return [500, { error: ErrorCode.internalError, message: 'internal error' }];
  }

  private fromHttpException(exception: HttpException): [number, ErrorBody] {
    const status = exception.getStatus();
    if (status === 404) return [404, { error: ErrorCode.notFound, message: 'no such route' }];
    if (status === 413) return [413, { error: ErrorCode.invalidRequest, message: 'request body is too large' }];
    if (status < 500) return [status, { error: ErrorCode.invalidRequest, message: exception.message }];
    this.logger.error({ err: exception }, 'http exception');
    return [status, { error: ErrorCode.internalError, message: 'internal error' }];
  }

  private fromFastifyError(status: number, code?: string): [number, ErrorBody] {
    if (status === 413) return [413, { error: ErrorCode.invalidRequest, message: 'request body is too large' }];
    if (status === 415) return [415, { error: ErrorCode.invalidRequest, message: 'content type must be application/json' }];
    const message = code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'request body is empty' : 'request body is not valid JSON';
    return [status, { error: ErrorCode.invalidRequest, message }];
  }
}
