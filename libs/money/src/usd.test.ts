import fc from 'fast-check';
import { InvalidAmountError } from './errors.js';
import {
  DEFAULT_MAX_MICROS,
  formatMicros,
  formatUsd,
  MAX_EXACT_NUMBER_MICROS,
  microsToUsdNumber,
  parseMicros,
  parseUsd,
  type ParseUsdOptions,
} from './usd.js';

function errorFor(run: () => unknown): InvalidAmountError {
  try {
    run();
  } catch (error) {
    if (error instanceof InvalidAmountError) return error;
    throw error;
  }
  throw new Error('expected an InvalidAmountError');
}

const wide: ParseUsdOptions = { allowZero: true, maxMicros: MAX_EXACT_NUMBER_MICROS };

/** Decimal strings of USD with at most 6 decimals and 15 significant digits (up to $1 billion). */
const decimalUsd = fc
  .tuple(
    fc.integer({ min: 0, max: 999_999_999 }),
    fc.integer({ min: 0, max: 6 }),
    fc.integer({ min: 0, max: 999_999 }),
  )
  .map(([whole, places, fraction]) =>
    places === 0 ? `${whole}` : `${whole}.${String(fraction % 10 ** places).padStart(places, '0')}`,
  );

describe('parseUsd', () => {
  it.each<[unknown, bigint]>([
    [4.95, 4_950_000n],
    ['4.95', 4_950_000n],
    [5, 5_000_000n],
    ['5', 5_000_000n],
    [1e-6, 1n],
    ['0.000001', 1n],
    [0.1, 100_000n],
    ['0.5', 500_000n],
    ['999999.999999', 999_999_999_999n],
    [1_000_000, DEFAULT_MAX_MICROS],
    ['1000000.000000', DEFAULT_MAX_MICROS],
  ])('accepts %p as %p micros', (input, micros) => {
    expect(parseUsd(input)).toBe(micros);
  });

  it.each<[unknown]>([[0], ['0'], [-0], ['0.000000']])('accepts zero %p only with allowZero', (input) => {
    expect(parseUsd(input, { allowZero: true })).toBe(0n);
    expect(errorFor(() => parseUsd(input)).message).toBe('amount must be positive');
  });

  const shape = 'amount_usd must be a plain decimal like "4.95" (no sign, exponent or leading zeros)';
  it.each<[string, unknown, string]>([
    ['a boolean', true, 'amount_usd must be a number or a decimal string'],
    ['null', null, 'amount_usd must be a number or a decimal string'],
    ['undefined', undefined, 'amount_usd must be a number or a decimal string'],
    ['an object', { amount: 5 }, 'amount_usd must be a number or a decimal string'],
    ['an array', [5], 'amount_usd must be a number or a decimal string'],
    ['a bigint', 5n, 'amount_usd must be a number or a decimal string'],
    ['NaN', NaN, 'amount_usd must be a finite number'],
    ['Infinity', Infinity, 'amount_usd must be a finite number'],
    ['-Infinity', -Infinity, 'amount_usd must be a finite number'],
    ['a negative number', -1, 'amount_usd must not be negative'],
    ['a negative string', '-1', 'amount_usd must not be negative'],
    ['minus zero as a string', '-0', 'amount_usd must not be negative'],
    ['an explicit plus', '+5', shape],
    ['an exponent string', '1e3', shape],
    ['an empty string', '', shape],
    ['leading whitespace', ' 5', shape],
    ['trailing whitespace', '5 ', shape],
    ['a bare leading point', '.5', shape],
    ['a bare trailing point', '5.', shape],
    ['hex', '0x10', shape],
    ['leading zeros', '007', shape],
    ['leading zeros before a point', '00.5', shape],
    ['a comma', '1,5', shape],
    ['an underscore', '1_000', shape],
    ['a word', 'five', shape],
    ['7 decimals in a string', '1.0000001', 'amount_usd has more than 6 decimal places'],
    ['trailing zeros past 6 places', '1.5000000', 'amount_usd has more than 6 decimal places'],
    ['7 decimals in a number', 1.0000001, 'amount_usd has more than 6 decimal places'],
    ['float noise', 0.1 + 0.2, 'amount_usd has more than 6 decimal places'],
    ['an exponent-form tiny number', 1e-7, 'amount_usd has more than 6 decimal places'],
    ['an exponent-form tiny number with digits', 1.5e-7, 'amount_usd has more than 6 decimal places'],
    ['a negative tiny number', -1e-7, 'amount_usd has more than 6 decimal places'],
    ['zero', 0, 'amount_usd must be positive'],
    ['just above the maximum', 1_000_000.000001, 'amount_usd exceeds the maximum of 1000000'],
    ['a string above the maximum', '1000001', 'amount_usd exceeds the maximum of 1000000'],
    ['an exponent-form huge number', 1e21, 'amount_usd exceeds the maximum of 1000000'],
    ['the largest double', Number.MAX_VALUE, 'amount_usd exceeds the maximum of 1000000'],
    ['a very long string', '1'.repeat(33), 'amount_usd is too long (at most 32 characters)'],
  ])('rejects %s', (_kind, input, message) => {
    const error = errorFor(() => parseUsd(input, { field: 'amount_usd' }));
    expect(error.code).toBe('invalid_amount');
    expect(error.field).toBe('amount_usd');
    expect(error.message).toBe(message);
  });

  it('applies minMicros and maxMicros', () => {
    const limits = { minMicros: 100_000n, maxMicros: 10_000_000n, field: 'amount_usd' };
    expect(parseUsd('0.1', limits)).toBe(100_000n);
    expect(parseUsd(10, limits)).toBe(10_000_000n);
    expect(errorFor(() => parseUsd(0.09, limits)).message).toBe('amount_usd is below the minimum of 0.1');
    expect(errorFor(() => parseUsd('10.000001', limits)).message).toBe(
      'amount_usd exceeds the maximum of 10',
    );
  });

  it('round-trips formatUsd and microsToUsdNumber for every amount up to $1 billion', () => {
    fc.assert(
      fc.property(fc.bigInt(0n, MAX_EXACT_NUMBER_MICROS), (micros) => {
        expect(parseUsd(formatUsd(micros), wide)).toBe(micros);
        expect(parseUsd(microsToUsdNumber(micros), wide)).toBe(micros);
      }),
      { numRuns: 2_000 },
    );
  });

  it('gives the same micros for a number and its decimal string with at most 6 decimals', () => {
    fc.assert(
      fc.property(decimalUsd, (text) => {
        expect(parseUsd(Number(text), wide)).toBe(parseUsd(text, wide));
      }),
      { numRuns: 2_000 },
    );
  });

  it('never rounds a number silently: it is either exactly representable or rejected', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.double({ min: 0, max: 1e9, noNaN: true }), decimalUsd.map(Number)),
        (amountUsd) => {
          let micros: bigint;
          try {
            micros = parseUsd(amountUsd, wide);
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidAmountError);
            expect((error as Error).message).toBe('amount has more than 6 decimal places');
            return;
          }
          expect(microsToUsdNumber(micros)).toBe(amountUsd);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe('formatUsd', () => {
  it.each<[bigint, string]>([
    [4_950_000n, '4.95'],
    [5_000_000n, '5'],
    [1n, '0.000001'],
    [0n, '0'],
    [100_000n, '0.1'],
    [-3_500_000n, '-3.5'],
    [-1n, '-0.000001'],
    [DEFAULT_MAX_MICROS, '1000000'],
  ])('formats %p micros as %p', (micros, text) => {
    expect(formatUsd(micros)).toBe(text);
  });

  it('turns micros into JSON numbers of USD', () => {
    expect(microsToUsdNumber(4_950_000n)).toBe(4.95);
    expect(microsToUsdNumber(-3_500_000n)).toBe(-3.5);
    expect(JSON.stringify({ amount_usd: microsToUsdNumber(1n) })).toBe('{"amount_usd":0.000001}');
  });
});

describe('parseMicros / formatMicros', () => {
  it.each<[string, bigint]>([
    ['4950000', 4_950_000n],
    ['0', 0n],
    ['-3500000', -3_500_000n],
  ])('parses %p', (text, micros) => {
    expect(parseMicros(text)).toBe(micros);
  });

  it.each<[unknown]>([
    [4950000],
    [4950000n],
    [''],
    ['-0'],
    ['007'],
    ['4.95'],
    ['1e6'],
    [' 1'],
    ['+1'],
    ['1'.repeat(33)],
  ])('rejects %p', (input) => {
    const error = errorFor(() => parseMicros(input, 'amount_micros'));
    expect(error.code).toBe('invalid_amount');
    expect(error.message).toBe('amount_micros must be an integer string of micro-dollars like "4950000"');
  });

  it('round-trips any amount', () => {
    fc.assert(
      fc.property(fc.bigInt(-(10n ** 30n), 10n ** 30n), (micros) => {
        expect(parseMicros(formatMicros(micros))).toBe(micros);
      }),
      { numRuns: 1_000 },
    );
  });
});
