import { DomainError, mandateErrors, type MandateAction } from '@pf/contracts';
import type { AuthenticatedRequest } from './auth.guard.js';
import { usd } from './request.js';

/**
 * Gateway-side rules of sub-keys (ADR 0019). Only what moves no money is checked here: the
 * mandate's limits, payees and the money-moving actions are decided by casino, in the same
 * transaction as the hold or transfer.
 */

/** Key management needs the agent's main key: a sub-key cannot mint, list or revoke keys. */
export function requireMainKey(request: AuthenticatedRequest): void {
  if (request.subKey)
    throw new DomainError(
      mandateErrors.subKeyNotAllowed,
      'sub-keys cannot manage keys: use the agent’s main API key',
    );
}

/** A sub-key whose `allowed_actions` does not list `action` is refused (403, nothing changed). */
export function requireAction(request: AuthenticatedRequest, action: MandateAction): void {
  const allowed = request.subKey?.allowedActions;
  if (allowed && !allowed.includes(action))
    throw new DomainError(mandateErrors.mandateActionNotAllowed, `this key may not ${action}`, { action });
}

/** Money that moves through the market (job awards) is not delegable to a sub-key yet. */
export function refuseSubKey(request: AuthenticatedRequest, action: string): void {
  if (request.subKey)
    throw new DomainError(
      mandateErrors.mandateActionNotAllowed,
      `a sub-key cannot ${action}: use the agent’s main API key`,
      { action },
    );
}

/** The key id to send with a money-moving command, when the request used a sub-key. */
export function keyIdOf(request: AuthenticatedRequest): { keyId: string } | Record<string, never> {
  return request.subKey ? { keyId: request.subKey.keyId } : {};
}

/** A mandate refusal from casino in the API's words: amounts in USD (`limit_usd`, `remaining_usd`). */
export function mandateRefusal(error: unknown): unknown {
  if (!(error instanceof DomainError) || error.code !== mandateErrors.mandateExceeded) return error;
  const { limit, limit_micros: limitMicros, remaining_micros: remainingMicros } = error.details ?? {};
  return new DomainError(error.code, error.message, {
    limit,
    ...(typeof limitMicros === 'string' ? { limit_usd: usd(limitMicros) } : {}),
    ...(typeof remainingMicros === 'string' ? { remaining_usd: usd(remainingMicros) } : {}),
  });
}
