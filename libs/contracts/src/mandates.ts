import { z } from 'zod';
import {
  AGENT_ID_PATTERN,
  agentIdSchema,
  apiKeySha256Schema,
  holdCommandSchema,
  positiveMicrosSchema,
} from './casino.js';

/**
 * Scoped API keys ("sub-keys") with spending mandates, and direct payments (ADR 0019). Casino
 * owns the keys and enforces a mandate inside the ledger decision that moves the money; the
 * gateway only checks what does not move money (allowed actions) and forwards the key id.
 */

/** Sub-key ids: `key_` + 16 hex; payments: `pay_` + 16 hex. */
export const KEY_ID_PATTERN = /^key_[0-9a-f]{16}$/;
export const PAYMENT_ID_PATTERN = /^pay_[0-9a-f]{16}$/;

/**
 * What a sub-key may be allowed to do. `escrow_create` and `pay` move money and are enforced
 * by casino in the hold or transfer decision; the others are checked by the gateway.
 */
export const MANDATE_ACTIONS = [
  'escrow_create',
  'escrow_release',
  'escrow_complete',
  'escrow_decline',
  'escrow_dispute',
  'pay',
] as const;
export type MandateAction = (typeof MANDATE_ACTIONS)[number];

export const MANDATE_LIMITS = {
  /** Live (not revoked, not expired) sub-keys one agent may hold. */
  maxLiveKeysPerAgent: 50,
  maxAllowedPayees: 100,
  /** A sub-key lives at most a year: every credential expires. */
  maxLifetimeMs: 366 * 24 * 3_600_000,
  /** The rolling window of `max_per_day_usd`. */
  dayWindowMs: 24 * 3_600_000,
  maxKeyNameChars: 64,
  maxMemoChars: 500,
  maxKeysListed: 100,
} as const;

/** The closed set of refusals a key or mandate can cause (statuses in errors.ts). */
export const mandateErrors = {
  /** 403: the amount is over `max_per_transaction_usd`, or over what remains of `max_per_day_usd`. */
  mandateExceeded: 'mandate_exceeded',
  /** 403: the payee (pay `to_agent_id`, escrow counterparty) is not in `allowed_payees`. */
  mandatePayeeNotAllowed: 'mandate_payee_not_allowed',
  /** 403: the action is not in `allowed_actions` (or cannot be delegated: job awards). */
  mandateActionNotAllowed: 'mandate_action_not_allowed',
  /** 401: the sub-key's `expires_at` passed. */
  keyExpired: 'key_expired',
  /** 401: the sub-key was revoked. */
  keyRevoked: 'key_revoked',
  /** 403: key management (create, list, revoke) needs the agent's main key. */
  subKeyNotAllowed: 'sub_key_not_allowed',
  /** 404: no such sub-key of this agent. */
  keyNotFound: 'key_not_found',
  /** 400: a mandate field is missing or out of range (the message names it). */
  invalidMandate: 'invalid_mandate',
  /** 409: the agent holds `maxLiveKeysPerAgent` live sub-keys already. */
  tooManyKeys: 'too_many_keys',
} as const;

export const paymentErrors = {
  /** 400: `to_agent_id` is not an agent id. */
  invalidPayee: 'invalid_payee',
  /** 400: a payment to oneself. */
  selfPayment: 'self_payment',
  /** 404: no agent `to_agent_id`. */
  payeeNotFound: 'payee_not_found',
  /** 400: `memo` is not text or too long. */
  invalidMemo: 'invalid_memo',
} as const;

export const mandateHttpStatuses: Readonly<Record<string, number>> = {
  mandate_exceeded: 403,
  mandate_payee_not_allowed: 403,
  mandate_action_not_allowed: 403,
  key_expired: 401,
  key_revoked: 401,
  sub_key_not_allowed: 403,
  key_not_found: 404,
  invalid_mandate: 400,
  too_many_keys: 409,
  invalid_payee: 400,
  self_payment: 400,
  payee_not_found: 404,
  invalid_memo: 400,
};

/** A mandate as it crosses the bus: amounts in micros, the expiry as an ISO time. */
export const mandateSchema = z.object({
  maxPerTransactionMicros: positiveMicrosSchema,
  maxPerDayMicros: positiveMicrosSchema,
  allowedPayees: z.array(agentIdSchema).max(MANDATE_LIMITS.maxAllowedPayees).nullable(),
  allowedActions: z.array(z.enum(MANDATE_ACTIONS)).min(1).max(MANDATE_ACTIONS.length).nullable(),
  expiresAt: z.iso.datetime({ offset: true }),
});
export type MandateWire = z.input<typeof mandateSchema>;

/**
 * Which key a money-moving command was made with, so casino checks its mandate in the same
 * decision that moves the money. Only the id travels, never the key.
 */
export const mandateUseSchema = z.object({
  keyId: z.string().regex(KEY_ID_PATTERN),
  action: z.enum(MANDATE_ACTIONS),
  /** Who ends up paid: the payment's payee, the escrow's counterparty. */
  payeeId: agentIdSchema,
});
export type MandateUse = z.infer<typeof mandateUseSchema>;

/** casino.cmd.hold with the key it was made with (escrow forwards it from the create). */
export const mandatedHoldCommandSchema = holdCommandSchema.extend({ mandate: mandateUseSchema.optional() });

export const mandateCommands = {
  createKey: 'casino.cmd.create_key',
  listKeys: 'casino.cmd.list_keys',
  revokeKey: 'casino.cmd.revoke_key',
  pay: 'casino.cmd.pay',
} as const;

export const createKeyCommandSchema = z.object({
  agentId: agentIdSchema,
  keyId: z.string().regex(KEY_ID_PATTERN),
  apiKeySha256: apiKeySha256Schema,
  name: z.string().max(MANDATE_LIMITS.maxKeyNameChars).nullable(),
  mandate: mandateSchema,
});
export type CreateKeyCommand = z.input<typeof createKeyCommandSchema>;

export const listKeysCommandSchema = z.object({ agentId: agentIdSchema });
export const revokeKeyCommandSchema = z.object({ agentId: agentIdSchema, keyId: z.string().max(64) });

/** A sub-key as casino describes it: never the key, never its hash. */
export interface KeyView {
  keyId: string;
  agentId: string;
  name: string | null;
  maxPerTransactionMicros: string;
  maxPerDayMicros: string;
  allowedPayees: string[] | null;
  allowedActions: MandateAction[] | null;
  expiresAt: string;
  createdAt: string;
  revokedAt: string | null;
  /** Spent in the last 24 h (rolling), by the database's clock. */
  spentLast24hMicros: string;
}
export interface KeyListReply {
  keys: KeyView[];
}

export const payCommandSchema = z.object({
  paymentId: z.string().regex(PAYMENT_ID_PATTERN),
  from: agentIdSchema,
  to: z.string().max(200),
  amountMicros: positiveMicrosSchema,
  memo: z.string().max(MANDATE_LIMITS.maxMemoChars).nullable(),
  /** Set when the payment is made with a sub-key. */
  keyId: z.string().regex(KEY_ID_PATTERN).optional(),
});
export type PayCommand = z.input<typeof payCommandSchema>;
export interface PaymentReply {
  paymentId: string;
  from: string;
  to: string;
  amountMicros: string;
  memo: string | null;
  keyId: string | null;
  /** The ledger's time of the transfer (the log's clock). */
  paidAt: string;
  /** The payer's spendable balance right after. */
  availableMicros: string;
}

/** What authentication tells the gateway about a sub-key (null for an agent's main key). */
export interface AuthenticatedKey {
  keyId: string;
  allowedActions: MandateAction[] | null;
  expiresAt: string;
}

export function isAgentId(value: unknown): value is string {
  return typeof value === 'string' && AGENT_ID_PATTERN.test(value);
}
