import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { AuthenticatedKey } from './mandates.js';

/**
 * Casino commands over NATS. Amounts travel as integer micro-dollar strings; ids of
 * operations (transfers, holds) are chosen by the caller so every command can be retried.
 */
export const casinoCommands = {
  ping: 'casino.cmd.ping',
  register: 'casino.cmd.register',
  authenticate: 'casino.cmd.authenticate',
  getAgent: 'casino.cmd.get_agent',
  transfer: 'casino.cmd.transfer',
  hold: 'casino.cmd.hold',
  post: 'casino.cmd.post',
  void: 'casino.cmd.void',
  getAccount: 'casino.cmd.get_account',
  getLedger: 'casino.cmd.get_ledger',
  referralStats: 'casino.cmd.referral_stats',
  credit: 'casino.cmd.credit',
  checkLedger: 'casino.cmd.check_ledger',
  getHold: 'casino.cmd.get_hold',
} as const;

export const casinoErrors = {
  agentNotFound: 'agent_not_found',
  accountNotFound: 'account_not_found',
  insufficientBalance: 'insufficient_balance',
  invalidSplits: 'invalid_splits',
  sameAccount: 'same_account',
  operationIdReused: 'operation_id_reused',
  holdNotFound: 'hold_not_found',
  holdAlreadyPosted: 'hold_already_posted',
  holdAlreadyVoided: 'hold_already_voided',
  referenceReused: 'reference_reused',
  /** A partial post's part id was used before for a different part of the hold. */
  partIdReused: 'part_id_reused',
} as const;

export const AGENT_ID_PATTERN = /^ag_[0-9a-f]{12}$/;
export const API_KEY_PATTERN = /^sk_live_[0-9a-f]{48}$/;
export const REFERRAL_CODE_PATTERN = /^ref_[0-9a-f]{8}$/;

/** Integer micro-dollars as a decimal string ("4950000"); bigint on both ends. */
export const microsSchema = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,17})$/, 'must be a non-negative integer number of micro-dollars')
  .transform((value) => BigInt(value));
export const positiveMicrosSchema = microsSchema.refine((value) => value > 0n, 'must be positive');

/** Operation ids: callers use escrow ids, claim UUIDs, deposit references. */
export const operationIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_:.-]+$/, 'must be a simple id');
/** Which service asked for a ledger operation; shown in the agents' ledger entries. */
const originSchema = z
  .string()
  .max(32)
  .regex(/^[a-z_-]+$/)
  .default('casino');

/** Ledger account names: agent ids or system accounts. */
export const accountSchema = z.string().min(1).max(64);
export const agentIdSchema = z.string().regex(AGENT_ID_PATTERN, 'must be an agent id (ag_ + 12 hex)');

/**
 * API keys never cross the bus: the gateway draws the key, shows it to the agent once and sends
 * casino only its SHA-256 (what casino stores and looks up). A 192-bit random key needs no slow
 * hash: there is nothing to brute-force. Someone reading the bus sees hashes, which open nothing.
 */
export const API_KEY_SHA256_PATTERN = /^[0-9a-f]{64}$/;
export const apiKeySha256Schema = z
  .string()
  .regex(API_KEY_SHA256_PATTERN, 'must be the SHA-256 of an API key, 64 lowercase hex digits');

/** The lowercase hex SHA-256 of an API key: the only form in which a key travels or is stored. */
export function apiKeySha256(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex');
}

/** A fresh key (`sk_live_` + 48 hex from the CSPRNG) and the hash casino is told. */
export function newApiKey(): { apiKey: string; apiKeySha256: string } {
  const apiKey = `sk_live_${randomBytes(24).toString('hex')}`;
  return { apiKey, apiKeySha256: apiKeySha256(apiKey) };
}

export const registerCommandSchema = z.object({
  apiKeySha256: apiKeySha256Schema,
  agentName: z.string().max(64).optional(),
  referralCode: z.string().max(64).optional(),
});
export type RegisterCommand = z.input<typeof registerCommandSchema>;
/** No key in the reply: the caller drew it (see `newApiKey`). */
export interface RegisterReply {
  agentId: string;
  referralCode: string;
  referredBy: string | null;
  createdAt: string;
}

export const authenticateCommandSchema = z.object({ apiKeySha256: apiKeySha256Schema });
export interface AuthenticateReply {
  agentId: string;
  /** The sub-key and its mandate's gateway-side part; absent for an agent's main key. */
  key?: AuthenticatedKey;
}

export const getAgentCommandSchema = z.object({ agentId: z.string().max(64) });
export interface AgentView {
  agentId: string;
  name: string | null;
  referralCode: string;
  referredBy: string | null;
  createdAt: string;
}

export const transferCommandSchema = z.object({
  transferId: operationIdSchema,
  from: accountSchema,
  to: accountSchema,
  amountMicros: positiveMicrosSchema,
  reason: z.string().max(64).default('transfer'),
  service: originSchema,
});
export type TransferCommand = z.input<typeof transferCommandSchema>;

export const holdCommandSchema = z.object({
  holdId: operationIdSchema,
  from: agentIdSchema,
  amountMicros: positiveMicrosSchema,
  reason: z.string().max(64).default('hold'),
  service: originSchema,
});
export type HoldCommand = z.input<typeof holdCommandSchema>;

/**
 * Why a post pays a destination: a closed set, because the ledger labels the entry and counts
 * lifetime earnings by it (a creator's share returned by a split is a `refund`, not earnings).
 */
export const SPLIT_REASONS = ['payout', 'commission', 'referral', 'refund', 'evaluator_fee'] as const;
export type SplitReason = (typeof SPLIT_REASONS)[number];
export const splitReasonSchema = z.enum(SPLIT_REASONS);

/**
 * A post pays what the hold still holds, to `splits`. With `partId` it is a partial post
 * (TigerBeetle's model): it pays only `splits` (their sum at most what is still held), the rest
 * stays held for later parts, a `final` part or a void. The part id is the caller's, so a
 * retried part is answered again and never paid twice.
 */
export const postCommandSchema = z
  .object({
    holdId: operationIdSchema,
    splits: z
      .array(
        z.object({ to: accountSchema, amountMicros: microsSchema, reason: splitReasonSchema.optional() }),
      )
      .min(1)
      .max(8),
    partId: operationIdSchema.optional(),
    final: z.boolean().optional(),
    service: originSchema,
  })
  .refine((command) => command.final === undefined || command.partId !== undefined, {
    message: 'final applies to a part: give partId',
    path: ['final'],
  });
export type PostCommand = z.input<typeof postCommandSchema>;

export const voidCommandSchema = z.object({ holdId: operationIdSchema, service: originSchema });
export type VoidCommand = z.input<typeof voidCommandSchema>;
export const getHoldCommandSchema = z.object({ holdId: operationIdSchema });

/** The outcome of a ledger operation; the same for the first call and every retry. */
export interface OperationReply {
  operationId: string;
  kind: 'transfer' | 'hold';
  status: 'transferred' | 'held' | 'posted' | 'voided' | 'rejected';
  from: string;
  to?: string;
  amountMicros: string;
  splits?: Array<{ to: string; amountMicros: string }>;
  /**
   * Only on the reply to a partial post: that part (the same on every retry) and what stayed
   * held right after it; `status` is then the hold's status right after the part.
   */
  part?: { partId: string; amountMicros: string; final: boolean; remainingMicros: string };
  /** Only when parts were posted: what the hold still holds now. */
  remainingMicros?: string;
  /** Global log position of the event that decided this outcome (for a part: the hold's latest). */
  position: number;
}

export const getAccountCommandSchema = z.object({
  agentId: agentIdSchema,
  recentLimit: z.number().int().min(0).max(50).default(10),
});
export interface ActivityView {
  type: string;
  amountMicros: string;
  balanceAfterMicros: string;
  reason: string;
  service: string;
  operationId: string;
  counterparty: string | null;
  at: string;
}
export interface AccountView {
  agentId: string;
  availableMicros: string;
  heldMicros: string;
  lifetime: {
    depositedMicros: string;
    withdrawnMicros: string;
    escrowedMicros: string;
    earnedMicros: string;
    feesMicros: string;
  };
  recentActivity: ActivityView[];
}

/** Largest Postgres bigint: a cursor is a log position, and a bigger one would fail the query. */
const MAX_BIGINT = 9_223_372_036_854_775_807n;

/** Opaque cursor from the previous page (the position of its last entry): digits within a bigint. */
export const ledgerCursorSchema = z
  .string()
  .regex(/^[0-9]{1,19}$/, 'must be a cursor returned by a previous page')
  .refine(
    (cursor) => /^[0-9]{1,19}$/.test(cursor) && BigInt(cursor) <= MAX_BIGINT,
    'must be a cursor returned by a previous page',
  );

export const getLedgerCommandSchema = z.object({
  agentId: agentIdSchema,
  limit: z.number().int().min(1).max(200).default(50),
  cursor: ledgerCursorSchema.optional(),
});
export interface LedgerPage {
  entries: ActivityView[];
  nextCursor: string | null;
}

export const referralStatsCommandSchema = z.object({ agentId: agentIdSchema });
export interface ReferralStatsView {
  agentId: string;
  referralCode: string;
  referredAgents: number;
  commissionEarnedMicros: string;
}

export const creditCommandSchema = z.object({
  agentId: agentIdSchema,
  amountMicros: positiveMicrosSchema,
  reference: z.string().min(1).max(128),
});
export type CreditCommand = z.input<typeof creditCommandSchema>;
export interface CreditReply {
  transferId: string;
  agentId: string;
  amountMicros: string;
  reference: string;
  availableMicros: string;
}

export interface LedgerCheckReport {
  ok: boolean;
  eventsChecked: number;
  accountsChecked: number;
  totalMicros: string;
  violations: Array<{ kind: string; account?: string; expected?: string; actual?: string; detail: string }>;
}
