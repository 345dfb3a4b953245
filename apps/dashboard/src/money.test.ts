import { microsFrom, microsFromUsd, usdText } from './money.js';

describe('usdText: bigint micros as USD text, exactly', () => {
  it.each([
    [0n, '$0.00'],
    [1n, '$0.000001'],
    [4_950_000n, '$4.95'],
    [5_000_000n, '$5.00'],
    [1_234_567_890_123n, '$1,234,567.890123'],
    [-3_500_000n, '-$3.50'],
    [-1n, '-$0.000001'],
    // Past 2^53 micros a float would already have lost the last digit.
    [9_007_199_254_740_993n, '$9,007,199,254.740993'],
  ])('%p micros → %s', (micros, text) => {
    expect(usdText(micros)).toBe(text);
  });

  it('sums that a float gets wrong are right here (0.1 + 0.2)', () => {
    expect(usdText(microsFromUsd(0.1) + microsFromUsd(0.2))).toBe('$0.30');
    expect(0.1 + 0.2).not.toBe(0.3);
  });
});

describe('reading amounts', () => {
  it('reads micro strings and USD numbers without float arithmetic', () => {
    expect(microsFrom('-42500')).toBe(-42_500n);
    expect(microsFromUsd(4.95)).toBe(4_950_000n);
    expect(microsFromUsd(-1.000001)).toBe(-1_000_001n);
    expect(microsFromUsd(0)).toBe(0n);
  });

  it('refuses what is not an exact amount', () => {
    expect(() => microsFrom('4.95')).toThrow();
    expect(() => microsFromUsd(0.1 + 0.2)).toThrow();
  });
});
