import fc from 'fast-check';
import { MoneyRangeError } from './errors.js';
import { addMicros, basisPointsOf, releaseSplit, splitByBasisPoints, subMicros } from './split.js';
import { MAX_EXACT_NUMBER_MICROS } from './usd.js';

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof MoneyRangeError) return error.code;
    throw error;
  }
  throw new Error('expected a MoneyRangeError');
}

/** 1..6 shares of basis points summing to exactly 10_000: differences of sorted cut points. */
const sharesBps = fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 5 }).map((cuts) => {
  const points = [0, ...cuts.sort((a, b) => a - b), 10_000];
  return points.slice(1).map((point, index) => BigInt(point - points[index]));
});

describe('addMicros / subMicros', () => {
  it('adds and subtracts', () => {
    expect(addMicros(4_950_000n, 50_000n)).toBe(5_000_000n);
    expect(subMicros(5_000_000n, 50_000n)).toBe(4_950_000n);
    expect(subMicros(5n, 5n)).toBe(0n);
  });

  it('refuses a negative result unless allowed', () => {
    expect(codeOf(() => subMicros(1n, 2n))).toBe('negative_result');
    expect(codeOf(() => subMicros(1n, 2n, { allowNegative: false }))).toBe('negative_result');
    expect(subMicros(1n, 2n, { allowNegative: true })).toBe(-1n);
  });
});

describe('basisPointsOf', () => {
  it.each<[bigint, bigint | number, bigint]>([
    [5_000_000n, 100, 50_000n],
    [100_000n, 100n, 1_000n],
    [99n, 100, 0n],
    [50_000n, 1_500n, 7_500n],
    [1_000n, 1_500, 150n],
    [7n, 10_000, 7n],
    [7n, 0, 0n],
  ])('%p micros at %p bps is %p (rounded down)', (amount, bps, result) => {
    expect(basisPointsOf(amount, bps)).toBe(result);
  });

  it.each<[bigint, bigint | number, string]>([
    [-1n, 100, 'negative_result'],
    [1n, -1, 'invalid_basis_points'],
    [1n, 10_001, 'invalid_basis_points'],
    [1n, 1.5, 'invalid_basis_points'],
    [1n, NaN, 'invalid_basis_points'],
  ])('rejects %p micros at %p bps', (amount, bps, code) => {
    expect(codeOf(() => basisPointsOf(amount, bps))).toBe(code);
  });
});

describe('splitByBasisPoints', () => {
  it.each<[bigint, (bigint | number)[], bigint[]]>([
    [100n, [3_333, 3_333, 3_334], [33n, 33n, 34n]],
    [1n, [5_000, 5_000], [1n, 0n]],
    [2n, [3_333, 3_333, 3_334], [1n, 0n, 1n]],
    [5_000_000n, [9_900n, 85n, 15n], [4_950_000n, 42_500n, 7_500n]],
    [0n, [10_000], [0n]],
    [7n, [0, 10_000], [0n, 7n]],
  ])('splits %p by %p into %p', (total, shares, parts) => {
    expect(splitByBasisPoints(total, shares)).toEqual(parts);
  });

  it.each<[bigint, (bigint | number)[], string]>([
    [1n, [], 'invalid_split'],
    [1n, [5_000, 4_999], 'invalid_split'],
    [1n, [5_000, 5_001], 'invalid_split'],
    [1n, new Array<number>(101).fill(0).map((_, index) => (index === 0 ? 10_000 : 0)), 'invalid_split'],
    [1n, [10_001, -1], 'invalid_basis_points'],
    [1n, [5_000.5, 4_999.5], 'invalid_basis_points'],
    [-1n, [10_000], 'negative_result'],
  ])('rejects %p by %p', (total, shares, code) => {
    expect(codeOf(() => splitByBasisPoints(total, shares))).toBe(code);
  });

  it('always sums to the total, each part within 1 micro of its exact share', () => {
    fc.assert(
      fc.property(fc.bigInt(0n, MAX_EXACT_NUMBER_MICROS), sharesBps, (total, shares) => {
        const parts = splitByBasisPoints(total, shares);
        expect(parts.reduce((sum, part) => sum + part, 0n)).toBe(total);
        parts.forEach((part, index) => {
          // |part - total * bps / 10000| < 1, scaled by 10000 to stay in integers.
          const error = part * 10_000n - total * shares[index];
          expect(error > -10_000n && error < 10_000n).toBe(true);
        });
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('releaseSplit', () => {
  it('matches the article: $5 at 100 bps with a referrer', () => {
    expect(releaseSplit(5_000_000n, 100, true)).toEqual({
      counterpartyMicros: 4_950_000n,
      commissionMicros: 50_000n,
      referrerMicros: 7_500n,
      houseMicros: 42_500n,
    });
  });

  it('gives the whole commission to the house without a referrer', () => {
    expect(releaseSplit(100_000n, 100n, false)).toEqual({
      counterpartyMicros: 99_000n,
      commissionMicros: 1_000n,
      referrerMicros: 0n,
      houseMicros: 1_000n,
    });
  });

  it('conserves the amount, with no negative part', () => {
    fc.assert(
      fc.property(
        fc.bigInt(0n, MAX_EXACT_NUMBER_MICROS),
        fc.integer({ min: 0, max: 10_000 }),
        fc.boolean(),
        (amount, commissionBps, hasReferrer) => {
          const split = releaseSplit(amount, commissionBps, hasReferrer);
          expect(split.counterpartyMicros + split.houseMicros + split.referrerMicros).toBe(amount);
          expect(split.houseMicros + split.referrerMicros).toBe(split.commissionMicros);
          expect(split.commissionMicros).toBe(basisPointsOf(amount, commissionBps));
          expect(Object.values(split).every((micros) => micros >= 0n)).toBe(true);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
