import { InvalidAmountError } from './errors.js';

/** 1 USD = 1_000_000 micro-dollars; every amount inside the system is a bigint of micros. */
export const MICROS_PER_USD = 1_000_000n;
/** Micro-dollars have 6 decimal places; an input with more cannot be represented exactly. */
export const USD_DECIMAL_PLACES = 6;
/** Default ceiling for a single amount from outside: $1,000,000. */
export const DEFAULT_MAX_MICROS = 1_000_000n * MICROS_PER_USD;
/**
 * Longest amount string we parse. Bounds the work done on hostile input; 32 characters is
 * far beyond any real amount (the default maximum has 7 integer digits).
 */
export const MAX_AMOUNT_STRING_LENGTH = 32;
/**
 * Up to this many micros ($1 billion) `microsToUsdNumber` is exact: every such amount has at
 * most 15 significant digits, and a double round-trips any decimal of 15 significant digits.
 */
export const MAX_EXACT_NUMBER_MICROS = 1_000_000_000n * MICROS_PER_USD;

export interface ParseUsdOptions {
  /** Field name used in error messages (default `amount`). */
  field?: string;
  /** Inclusive upper bound (default `DEFAULT_MAX_MICROS`). */
  maxMicros?: bigint;
  /** Inclusive lower bound, checked after the zero rule (default none beyond the zero rule). */
  minMicros?: bigint;
  /** Accept 0 (default false: an amount to move must be positive). */
  allowZero?: boolean;
}

/**
 * A USD amount from outside to micros. Accepts a JS number (as JSON.parse produced it) or a
 * plain decimal string. Strict on purpose, because a lenient parser is how money goes wrong:
 * - strings: `^(0|[1-9]\d*)(\.\d{1,6})?$` only — no whitespace, no sign, no exponent, no hex,
 *   no leading zeros (`007`), no bare point (`.5`, `5.`), no trailing zeros past 6 places;
 * - numbers: finite and non-negative; read through `String(n)`, the shortest decimal that
 *   round-trips, so `4.95` is exactly 4.95 and `0.1 + 0.2` (`0.30000000000000004`) is rejected
 *   for having more than 6 decimals. No floating-point arithmetic touches the value;
 * - anything else (boolean, null, bigint, object, array) is rejected.
 */
export function parseUsd(input: unknown, options: ParseUsdOptions = {}): bigint {
  const field = options.field ?? 'amount';
  const plain = toPlainDecimal(input, field);
  const micros = decimalToMicros(plain, field);
  checkBounds(micros, field, options);
  return micros;
}

function toPlainDecimal(input: unknown, field: string): string {
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw new InvalidAmountError(`${field} must be a finite number`, field);
    return expandExponent(String(input));
  }
  if (typeof input === 'string') {
    if (input.length > MAX_AMOUNT_STRING_LENGTH) {
      throw new InvalidAmountError(
        `${field} is too long (at most ${MAX_AMOUNT_STRING_LENGTH} characters)`,
        field,
      );
    }
    return input;
  }
  throw new InvalidAmountError(`${field} must be a number or a decimal string`, field);
}

/**
 * `String(n)` switches to exponent notation below 1e-6 and from 1e21; rewrite that as a plain
 * decimal by moving the point in the digit string (exact, no arithmetic on the double).
 */
function expandExponent(text: string): string {
  const match = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (match === null) return text;
  const [, sign, lead, fraction = '', exponentText] = match;
  const digits = lead + fraction;
  const pointIndex = 1 + Number(exponentText);
  if (pointIndex <= 0) return `${sign}0.${'0'.repeat(-pointIndex)}${digits}`;
  if (pointIndex >= digits.length) return sign + digits + '0'.repeat(pointIndex - digits.length);
  return `${sign}${digits.slice(0, pointIndex)}.${digits.slice(pointIndex)}`;
}

function decimalToMicros(text: string, field: string): bigint {
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (match === null || (match[2].length > 1 && match[2].startsWith('0'))) {
    throw new InvalidAmountError(
      `${field} must be a plain decimal like "4.95" (no sign, exponent or leading zeros)`,
      field,
    );
  }
  const [, sign, integerDigits, fractionDigits = ''] = match;
  if (fractionDigits.length > USD_DECIMAL_PLACES) {
    throw new InvalidAmountError(`${field} has more than ${USD_DECIMAL_PLACES} decimal places`, field);
  }
  // Checked after the shape so that "-1.0000001" reports decimals and "-1" reports the sign.
  if (sign === '-') throw new InvalidAmountError(`${field} must not be negative`, field);
  return BigInt(integerDigits + fractionDigits.padEnd(USD_DECIMAL_PLACES, '0'));
}

function checkBounds(micros: bigint, field: string, options: ParseUsdOptions): void {
  if (micros === 0n && options.allowZero !== true) {
    throw new InvalidAmountError(`${field} must be positive`, field);
  }
  const maxMicros = options.maxMicros ?? DEFAULT_MAX_MICROS;
  if (micros > maxMicros) {
    throw new InvalidAmountError(`${field} exceeds the maximum of ${formatUsd(maxMicros)}`, field);
  }
  if (options.minMicros !== undefined && micros < options.minMicros) {
    throw new InvalidAmountError(`${field} is below the minimum of ${formatUsd(options.minMicros)}`, field);
  }
}

/**
 * An integer micro-dollar string (the event payload format, `"4950000"`) to bigint. Accepts
 * exactly what `formatMicros` produces: optional `-` (system accounts such as `world` go
 * negative), no leading zeros, no `-0`, no whitespace, at most `MAX_AMOUNT_STRING_LENGTH` chars.
 */
export function parseMicros(input: unknown, field = 'amount'): bigint {
  if (
    typeof input !== 'string' ||
    input.length > MAX_AMOUNT_STRING_LENGTH ||
    !/^(0|-?[1-9]\d*)$/.test(input)
  ) {
    throw new InvalidAmountError(`${field} must be an integer string of micro-dollars like "4950000"`, field);
  }
  return BigInt(input);
}

/** Micros to the shortest USD decimal string: "4.95", "5", "0.000001", "-3.5". */
export function formatUsd(micros: bigint): string {
  const sign = micros < 0n ? '-' : '';
  const magnitude = micros < 0n ? -micros : micros;
  const whole = magnitude / MICROS_PER_USD;
  const fraction = (magnitude % MICROS_PER_USD)
    .toString()
    .padStart(USD_DECIMAL_PLACES, '0')
    .replace(/0+$/, '');
  return fraction === '' ? `${sign}${whole}` : `${sign}${whole}.${fraction}`;
}

/**
 * Micros to a JSON number of USD for API responses. Exact (parses back to the same micros)
 * for |micros| <= MAX_EXACT_NUMBER_MICROS ($1 billion); beyond that the number is the
 * nearest double, fine for display but not for arithmetic. Never feed it back into a balance
 * except through `parseUsd`.
 */
export function microsToUsdNumber(micros: bigint): number {
  return Number(formatUsd(micros));
}

/** Micros to the integer string used in event payloads ("4950000", "-3500000"). */
export function formatMicros(micros: bigint): string {
  return micros.toString();
}
