import { faucetErrors } from '@pf/contracts';
import { assertIpAllowance, IP_WINDOW_SECONDS, limitedAddress } from './ip-allowance.js';

const HOUR_MS = 3_600_000;
const NOW_MS = 1_800_000_000_000;

function refusal(limitPerDay: number, claimsInWindow: number, oldestClaimAtMs: number | null): unknown {
  try {
    assertIpAllowance(limitPerDay, { claimsInWindow, oldestClaimAtMs, nowMs: NOW_MS });
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('the per-address faucet allowance', () => {
  it('given no claims from the address, when an agent claims, then it is allowed', () => {
    expect(refusal(1, 0, null)).toBeUndefined();
  });

  it('given fewer claims than the limit, when another agent claims, then it is allowed', () => {
    expect(refusal(3, 2, NOW_MS - HOUR_MS)).toBeUndefined();
  });

  it('given the limit reached, when another agent claims, then it is refused until the oldest claim leaves the window', () => {
    const oldest = NOW_MS - 20 * HOUR_MS;
    expect(refusal(1, 1, oldest)).toMatchObject({
      code: faucetErrors.ipRateLimited,
      details: { retry_after_seconds: 4 * 3600 },
    });
  });

  it('given the oldest claim about to leave the window, then Retry-After is still at least one second', () => {
    const oldest = NOW_MS - IP_WINDOW_SECONDS * 1000 + 10;
    expect(refusal(2, 5, oldest)).toMatchObject({ details: { retry_after_seconds: 1 } });
  });

  it('given the limit is 0 (off), then nothing is refused and no address is held', () => {
    expect(refusal(0, 1_000, NOW_MS)).toBeUndefined();
    expect(limitedAddress(0, '203.0.113.7')).toBeNull();
    expect(limitedAddress(1, '203.0.113.7')).toBe('203.0.113.7');
    expect(limitedAddress(1, null)).toBeNull();
  });
});
