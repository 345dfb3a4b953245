import { DomainError, faucetErrors } from '@pf/contracts';

/**
 * The per-address allowance (API.md's "per day"): claims that other agents recorded from one
 * client address in the last 24 hours. An agent's own earlier claim never counts against it
 * (the claim decider refuses a second claim anyway). Pure: the caller reads the address's
 * claims under the address lock and passes the database's clock.
 */
export const IP_WINDOW_SECONDS = 24 * 60 * 60;

export interface AddressClaims {
  /** Claims other agents recorded from the address within the window. */
  claimsInWindow: number;
  /** When the oldest of them was recorded (ms since the epoch); null when there are none. */
  oldestClaimAtMs: number | null;
  /** The database's clock, the one clock every replica shares. */
  nowMs: number;
}

/**
 * The address to hold a claim against, or null when the limit is off (0) or the address is
 * unknown (a claim without an address is not limited here; the gateway decides who has one).
 */
export function limitedAddress(limitPerDay: number, clientIp: string | null): string | null {
  return limitPerDay > 0 ? clientIp : null;
}

/**
 * Refuses with `ip_rate_limited` when the address has used its allowance, saying when the
 * oldest claim leaves the window (at least 1 s, for Retry-After).
 */
export function assertIpAllowance(limitPerDay: number, usage: AddressClaims): void {
  if (limitPerDay <= 0 || usage.claimsInWindow < limitPerDay) return;
  const freeAtMs = (usage.oldestClaimAtMs ?? usage.nowMs) + IP_WINDOW_SECONDS * 1000;
  const retryAfterSeconds = Math.max(Math.ceil((freeAtMs - usage.nowMs) / 1000), 1);
  throw new DomainError(faucetErrors.ipRateLimited, 'this address has used its faucet claims for the day', {
    retry_after_seconds: retryAfterSeconds,
  });
}
