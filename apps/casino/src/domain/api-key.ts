import {
  DomainError,
  ErrorCode,
  MANDATE_LIMITS,
  mandateErrors,
  type Decider,
  type MandateAction,
} from '@pf/contracts';

/**
 * A scoped API key ("sub-key") and its spending mandate (ADR 0019). One stream per key
 * (`key-<key id>`): created, revoked, and one `key_spent` per money-moving operation made with
 * it. The spend is decided in the same transaction as the ledger operation it pays for, with
 * the key's row locked, so the rolling 24 h total can never be overrun by concurrent commands.
 * Pure: the caller passes the clock (the database's `now()`) and the window's spent total.
 */

export interface Mandate {
  maxPerTransactionMicros: bigint;
  maxPerDayMicros: bigint;
  /** Null: any payee. */
  allowedPayees: readonly string[] | null;
  /** Null: every action. */
  allowedActions: readonly MandateAction[] | null;
  expiresAtMs: number;
}

export type KeyCommand =
  | {
      kind: 'create';
      keyId: string;
      agentId: string;
      apiKeyHashHex: string;
      name: string | null;
      mandate: Mandate;
      nowMs: number;
    }
  | { kind: 'revoke'; keyId: string; agentId: string }
  | {
      kind: 'spend';
      keyId: string;
      /** The agent whose money moves: must own the key. */
      agentId: string;
      operationId: string;
      action: MandateAction;
      payeeId: string;
      amountMicros: bigint;
      nowMs: number;
      /** What the key spent in the 24 h before `nowMs` (from the key's spends, under its lock). */
      spentInWindowMicros: bigint;
    };

export type KeyEvent =
  | {
      type: 'api_key_created';
      keyId: string;
      agentId: string;
      apiKeyHashHex: string;
      name: string | null;
      mandate: Mandate;
    }
  | { type: 'api_key_revoked'; keyId: string; agentId: string }
  | {
      type: 'key_spent';
      keyId: string;
      agentId: string;
      operationId: string;
      action: MandateAction;
      payeeId: string;
      amountMicros: bigint;
    };

export type KeyState =
  | { status: 'none' }
  | { status: 'active' | 'revoked'; keyId: string; agentId: string; apiKeyHashHex: string; mandate: Mandate };

export const apiKeyDecider: Decider<KeyCommand, KeyEvent, KeyState> = {
  initialState: () => ({ status: 'none' }),
  decide: (command, state) => {
    switch (command.kind) {
      case 'create':
        return decideCreate(command, state);
      case 'revoke':
        return decideRevoke(command, state);
      case 'spend':
        return decideSpend(command, state);
    }
  },
  evolve: (state, event) => {
    switch (event.type) {
      case 'api_key_created':
        return {
          status: 'active',
          keyId: event.keyId,
          agentId: event.agentId,
          apiKeyHashHex: event.apiKeyHashHex,
          mandate: event.mandate,
        };
      case 'api_key_revoked':
        return state.status === 'none' ? state : { ...state, status: 'revoked' };
      case 'key_spent':
        // The window's total is loaded from the spends (it depends on the clock), not folded here.
        return state;
    }
  },
};

function decideCreate(command: Extract<KeyCommand, { kind: 'create' }>, state: KeyState): KeyEvent[] {
  if (state.status !== 'none') {
    // A retry of the same create (the gateway's Idempotency-Key replay) changes nothing.
    if (state.agentId === command.agentId && state.apiKeyHashHex === command.apiKeyHashHex) return [];
    throw new DomainError(ErrorCode.versionConflict, `key id ${command.keyId} is taken`);
  }
  validateMandate(command.mandate, command.agentId, command.nowMs);
  const { kind: _kind, nowMs: _nowMs, ...fields } = command;
  return [{ type: 'api_key_created', ...fields }];
}

/** The mandate's rules; the gateway checks the same with field-by-field messages first. */
export function validateMandate(mandate: Mandate, agentId: string, nowMs: number): void {
  const invalid = (message: string) => new DomainError(mandateErrors.invalidMandate, message);
  if (mandate.maxPerTransactionMicros <= 0n || mandate.maxPerDayMicros <= 0n)
    throw invalid('max_per_transaction_usd and max_per_day_usd must be positive');
  if (mandate.maxPerTransactionMicros > mandate.maxPerDayMicros)
    throw invalid('max_per_transaction_usd cannot be above max_per_day_usd');
  if (!(mandate.expiresAtMs > nowMs)) throw invalid('expires_at must be in the future');
  if (mandate.expiresAtMs - nowMs > MANDATE_LIMITS.maxLifetimeMs)
    throw invalid('expires_at is more than 366 days away');
  if (mandate.allowedPayees !== null) {
    if (mandate.allowedPayees.length > MANDATE_LIMITS.maxAllowedPayees)
      throw invalid(`allowed_payees has more than ${MANDATE_LIMITS.maxAllowedPayees} agents`);
    if (mandate.allowedPayees.includes(agentId)) throw invalid('allowed_payees cannot name the agent itself');
  }
  if (mandate.allowedActions !== null && mandate.allowedActions.length === 0)
    throw invalid('allowed_actions cannot be empty (omit it to allow every action)');
}

function decideRevoke(command: Extract<KeyCommand, { kind: 'revoke' }>, state: KeyState): KeyEvent[] {
  // Another agent's key is "not found": its existence is none of the caller's business.
  if (state.status === 'none' || state.agentId !== command.agentId)
    throw new DomainError(mandateErrors.keyNotFound, `no key ${command.keyId}`);
  if (state.status === 'revoked') return [];
  return [{ type: 'api_key_revoked', keyId: state.keyId, agentId: state.agentId }];
}

/**
 * The mandate check of one money-moving operation. Order: whose key, revoked, expired, action,
 * payee, per-transaction limit, then the rolling day (the answer says how much remains).
 */
function decideSpend(command: Extract<KeyCommand, { kind: 'spend' }>, state: KeyState): KeyEvent[] {
  if (state.status === 'none') throw new DomainError(ErrorCode.unauthorized, 'unknown API key');
  if (state.agentId !== command.agentId)
    throw new DomainError(ErrorCode.forbidden, 'this key cannot move that account’s money');
  if (state.status === 'revoked') throw new DomainError(mandateErrors.keyRevoked, 'this API key was revoked');
  const { mandate } = state;
  if (command.nowMs >= mandate.expiresAtMs)
    throw new DomainError(mandateErrors.keyExpired, 'this API key has expired', {
      expired_at: new Date(mandate.expiresAtMs).toISOString(),
    });
  if (mandate.allowedActions !== null && !mandate.allowedActions.includes(command.action))
    throw new DomainError(mandateErrors.mandateActionNotAllowed, `this key may not ${command.action}`, {
      action: command.action,
    });
  if (mandate.allowedPayees !== null && !mandate.allowedPayees.includes(command.payeeId))
    throw new DomainError(mandateErrors.mandatePayeeNotAllowed, `this key may not pay ${command.payeeId}`, {
      payee: command.payeeId,
    });
  if (command.amountMicros <= 0n) throw new DomainError(ErrorCode.invalidAmount, 'amount must be positive');
  if (command.amountMicros > mandate.maxPerTransactionMicros)
    throw exceeded('per_transaction', mandate.maxPerTransactionMicros, mandate.maxPerTransactionMicros);
  const remainingMicros = mandate.maxPerDayMicros - command.spentInWindowMicros;
  if (command.amountMicros > remainingMicros)
    throw exceeded('per_day', mandate.maxPerDayMicros, remainingMicros > 0n ? remainingMicros : 0n);
  return [
    {
      type: 'key_spent',
      keyId: state.keyId,
      agentId: state.agentId,
      operationId: command.operationId,
      action: command.action,
      payeeId: command.payeeId,
      amountMicros: command.amountMicros,
    },
  ];
}

/** Details in micros (strings); the gateway shows them in USD. */
function exceeded(limit: 'per_transaction' | 'per_day', limitMicros: bigint, remainingMicros: bigint) {
  return new DomainError(
    mandateErrors.mandateExceeded,
    limit === 'per_day'
      ? 'this payment would exceed the key’s max_per_day_usd (rolling 24 h)'
      : 'this payment is above the key’s max_per_transaction_usd',
    { limit, limit_micros: limitMicros.toString(), remaining_micros: remainingMicros.toString() },
  );
}
