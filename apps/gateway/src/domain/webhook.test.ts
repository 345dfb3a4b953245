import { afterFailure } from './webhook.js';

const policy = {
  retryInitialMs: 1_000,
  retryMaxMs: 60_000,
  disableAfterFailures: 5,
  disableAfterMs: 86_400_000,
};

describe('webhook rules', () => {
  it('backs off exponentially up to the cap, with at most 10% jitter', () => {
    const at = (failures: number, random = 0) =>
      afterFailure({ consecutiveFailures: failures, failingSinceMs: 0 }, 1_000, policy, random);
    expect(at(1)).toEqual({ disable: false, retryInMs: 1_000 });
    expect(at(3)).toEqual({ disable: false, retryInMs: 4_000 });
    expect(at(20)).toEqual({ disable: false, retryInMs: 60_000 });
    expect(at(1, 1)).toEqual({ disable: false, retryInMs: 1_100 });
  });

  it('disables only when both the failure count and the failing time are passed (never before a day by default)', () => {
    const day = 86_400_000;
    expect(afterFailure({ consecutiveFailures: 100, failingSinceMs: 0 }, day - 1, policy, 0).disable).toBe(
      false,
    );
    expect(afterFailure({ consecutiveFailures: 4, failingSinceMs: 0 }, 2 * day, policy, 0).disable).toBe(
      false,
    );
    expect(afterFailure({ consecutiveFailures: 5, failingSinceMs: 0 }, day, policy, 0).disable).toBe(true);
  });
});
