import type { z } from 'zod';
import { DomainError, ErrorCode } from './errors.js';

/**
 * Validates input against a schema at the edge: the first problem becomes a DomainError
 * `invalid_request` naming the field, so nothing unvalidated goes further.
 */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what = 'request body',
): z.infer<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.map(String).join('.');
  throw new DomainError(
    ErrorCode.invalidRequest,
    field ? `${field}: ${issue.message}` : `${what}: ${issue.message}`,
  );
}
