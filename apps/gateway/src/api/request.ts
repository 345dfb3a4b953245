import { DomainError, ErrorCode } from '@pf/contracts';
import { InvalidAmountError, microsToUsdNumber, parseUsd, type ParseUsdOptions } from '@pf/money';
import type { z } from 'zod';

/**
 * Validates a request body (or query) against a schema once, at the edge. The first problem
 * becomes a 400 `invalid_request` naming the field; nothing reaches a service unvalidated.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what = 'request body'): z.infer<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.map(String).join('.');
  const message = field ? `${field}: ${issue.message}` : `${what}: ${issue.message}`;
  throw new DomainError(ErrorCode.invalidRequest, message);
}

/** A USD amount from the API (JSON number or decimal string) to micros, or 400 invalid_amount. */
export function parseAmount(input: unknown, options: ParseUsdOptions): bigint {
  try {
    return parseUsd(input, options);
  } catch (error) {
    if (error instanceof InvalidAmountError) throw new DomainError(ErrorCode.invalidAmount, error.message);
    throw error;
  }
}

/** Micros (bigint or integer string from a service) to the API's JSON number of USD. */
export function usd(micros: bigint | string): number {
  return microsToUsdNumber(typeof micros === 'bigint' ? micros : BigInt(micros));
}
