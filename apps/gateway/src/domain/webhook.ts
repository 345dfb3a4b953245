/**
 * Webhook rules without I/O (ADR 0020): when to retry a failing endpoint and when to give up on it.
 */

export interface RetryPolicy {
  retryInitialMs: number;
  retryMaxMs: number;
  /** An endpoint is disabled only after this many failures in a row … */
  disableAfterFailures: number;
  /** … and only once it has been failing for this long (at least a day by default). */
  disableAfterMs: number;
}

export interface FailureState {
  /** Failures in a row, counting the one just seen. */
  consecutiveFailures: number;
  /** When the first failure of this run happened. */
  failingSinceMs: number;
}

export type FailureOutcome = { disable: true } | { disable: false; retryInMs: number };

/**
 * After a failed attempt: disable when both limits are passed, else wait twice as long as last
 * time (capped), with up to 10% jitter so endpoints that failed together do not retry together.
 */
export function afterFailure(
  state: FailureState,
  nowMs: number,
  policy: RetryPolicy,
  random: number,
): FailureOutcome {
  if (
    state.consecutiveFailures >= policy.disableAfterFailures &&
    nowMs - state.failingSinceMs >= policy.disableAfterMs
  )
    return { disable: true };
  const exponent = Math.min(Math.max(state.consecutiveFailures - 1, 0), 30);
  const baseMs = Math.min(policy.retryMaxMs, policy.retryInitialMs * 2 ** exponent);
  return { disable: false, retryInMs: Math.round(baseMs * (1 + 0.1 * random)) };
}
