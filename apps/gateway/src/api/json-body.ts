import type { FastifyInstance } from 'fastify';
import { DomainError, ErrorCode } from '@pf/contracts';
import { unsafeInputProblem } from './input-guard.js';

/**
 * JSON bodies only. An empty body counts as `{}`: clients written for the public service send
 * `Content-Type: application/json` with no body on release/complete. Anything that is not a
 * JSON object or array is a 400 `invalid_request`; other content types are refused (415). So are
 * bodies nested too deep or holding text no store can keep (input-guard.ts).
 */
export function installJsonBodyParser(fastify: FastifyInstance): void {
  fastify.removeContentTypeParser('text/plain');
  fastify.addContentTypeParser(
    ['application/json', 'application/*+json'],
    { parseAs: 'string' },
    (_request, body, done) => {
      const text = (body as string).trim();
      if (text === '') return done(null, {});
      try {
        const parsed: unknown = JSON.parse(text);
        if (parsed === null || typeof parsed !== 'object') {
          return done(
            new DomainError(ErrorCode.invalidRequest, 'request body must be a JSON object'),
            undefined,
          );
        }
        const problem = unsafeInputProblem(parsed);
        if (problem)
          return done(new DomainError(ErrorCode.invalidRequest, `request body: ${problem}`), undefined);
        done(null, parsed);
      } catch {
        done(new DomainError(ErrorCode.invalidRequest, 'request body is not valid JSON'), undefined);
      }
    },
  );
  fastify.addContentTypeParser('*', (request, payload, done) => {
    // No declared body (e.g. curl -X POST with no data) is fine; any other type is not JSON.
    const length = request.headers['content-length'];
    if (length === undefined || length === '0') {
      payload.resume();
      return done(null, {});
    }
    done(new DomainError(ErrorCode.invalidRequest, 'content type must be application/json'), undefined);
  });
}
