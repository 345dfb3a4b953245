import { DomainError, ErrorCode, parseOrThrow } from '@pf/contracts';
import { InvalidAmountError, microsToUsdNumber, parseUsd, type ParseUsdOptions } from '@pf/money';

/** Validates a request body (or query) once, at the edge: 400 `invalid_request` naming the field. */
export const parseInput = parseOrThrow;

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
